// §6.4 storage, §6.6 network, §6.7 Tailscale, §6.8 application and downloads, §6.9 AI control.
// The simulated device is offline: anything that needs the internet fails like it does there.

import Foundation
import NanoKVM

extension Device {
    // MARK: Storage

    func images(_ c: RouteContext) async -> SimResponse {
        let files = state.withLock { s in
            s.images.keys.filter { $0.lowercased().hasSuffix(".iso") || $0.lowercased().hasSuffix(".img") }.sorted()
        }
        return ok(["files": files.isEmpty ? .null : .array(files.map { .string($0) })])
    }

    func mountedImage(_ c: RouteContext) async -> SimResponse {
        let (mode, disk, file) = state.withLock { ($0.hidMode, $0.diskDevice, $0.mountedFile) }
        if mode == "hid-only" {
            return profile.atLeast("2.5.0") ? ok(["file": ""]) : fail(-2, "read failed")
        }
        guard disk else { return fail(-2, "read failed") }
        return ok(["file": .string(file)])
    }

    func mountImage(_ c: RouteContext) async -> SimResponse {
        var fields = [GoField("File", .string, json: "file")]
        let cdromSupported = profile.atLeast("2.2.1")
        if cdromSupported { fields.append(GoField("Cdrom", .bool, json: "cdrom")) }
        guard case let .success(body) = RequestBinder.bind(c.request, "MountImageReq", fields) else {
            return fail(-1, "invalid arguments")
        }
        let file = body.string("File")
        let cdrom = cdromSupported && body.bool("Cdrom")
        let error = state.withLock { s -> String? in
            let lunAvailable = s.diskDevice && s.hidMode == "normal"
            if cdromSupported, file.isEmpty || cdrom {
                guard lunAvailable else { return "unmount image failed" }
                s.mountedFile = ""
                let flag = !file.isEmpty && cdrom ? 1 : 0
                s.readOnlyFlag = flag
                s.cdromFlag = flag
            }
            if profile.atLeast("2.3.0") {
                guard lunAvailable else { return "set inquiry failed" }
                s.inquiry = cdrom ? "NanoKVM USB CD/DVD-ROM  0520" : "NanoKVM USB Mass Storage0520"
            }
            guard lunAvailable else { return "mount image failed" }
            // The kernel refuses a backing file that does not exist.
            if !file.isEmpty, s.images[file] == nil { return "mount image failed" }
            s.mountedFile = file
            return nil
        }
        if let error { return fail(-2, error) }
        // The UDC is unbound and rebound: the host re-enumerates every KVM USB function.
        await deviceDelay(milliseconds: 200)
        host.usbReenumerated()
        presentMediaToHost()
        return ok()
    }

    func cdrom(_ c: RouteContext) async -> SimResponse {
        let (disk, flag) = state.withLock { ($0.diskDevice, $0.cdromFlag) }
        guard disk else { return fail(-1, "read failed") }
        return ok(["cdrom": .integer(Int64(flag))])
    }

    func deleteImage(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "DeleteImageReq", [GoField("File", .string, json: "file", required: true)]) else {
            return fail(-1, "invalid arguments")
        }
        let file = body.string("File")
        let lower = file.lowercased()
        guard lower.hasPrefix("/data"), lower.hasSuffix(".iso") || lower.hasSuffix(".img") else {
            return fail(-2, "invalid arguments")
        }
        let removed = state.withLock { $0.images.removeValue(forKey: file) != nil }
        return removed ? ok() : fail(-3, "remove file failed")
    }

    // MARK: Network

    /// main's MAC normalisation: `AA:BB:…`, `aa-bb-…`, `aabb.ccdd.eeff` or 12 hex digits.
    static func normalizeMAC(_ text: String) -> String? {
        let hexDigits = text.filter { $0.isHexDigit }
        let separators = text.filter { !$0.isHexDigit }
        guard hexDigits.count == 12, separators.allSatisfy({ ":-.".contains($0) }) else { return nil }
        let valid = [0, 5, 3].contains(separators.count)
        guard valid else { return nil }
        var pairs: [String] = []
        var index = hexDigits.startIndex
        for _ in 0..<6 {
            let next = hexDigits.index(index, offsetBy: 2)
            pairs.append(String(hexDigits[index..<next]).uppercased())
            index = next
        }
        return pairs.joined(separator: ":")
    }

    func wakeOnLAN(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "WakeOnLANReq", [GoField("Mac", .string, form: "mac", required: true)]) else {
            return fail(-1, "invalid arguments")
        }
        var mac = body.string("Mac")
        if profile.atLeast("2.1.4") {
            guard let normalized = Self.normalizeMAC(mac) else { return fail(-2, "invalid MAC address") }
            mac = normalized
        }
        state.withLock { s in
            var history = s.wolHistory ?? []
            if !history.contains(where: { $0 == mac || $0.hasPrefix(mac + " ") }) { history.append(mac) }
            s.wolHistory = history
        }
        return ok()
    }

    func wolMACs(_ c: RouteContext) async -> SimResponse {
        guard let history = state.withLock({ $0.wolHistory }) else {
            return profile.wolBlankEntry ? fail(-2, "open file error") : ok(["macs": []])
        }
        var entries = history.map { JSONValue.string($0) }
        if profile.wolBlankEntry { entries.append("") }
        return ok(["macs": .array(entries)])
    }

    func deleteWolMAC(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "DeleteMacReq", [GoField("Mac", .string, form: "mac", required: true)]) else {
            return fail(-1, "invalid arguments")
        }
        let mac = Self.normalizeMAC(body.string("Mac")) ?? body.string("Mac")
        let ok = state.withLock { s -> Bool in
            guard var history = s.wolHistory else { return false }
            history.removeAll { $0 == mac || $0.hasPrefix(mac + " ") }
            s.wolHistory = history
            return true
        }
        return ok ? self.ok() : fail(-3, "write failed")
    }

    func nameWolMAC(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Mac", .string, form: "mac", required: true), GoField("Name", .string, form: "name", required: true)]
        guard case let .success(body) = RequestBinder.bind(c.request, "SetMacNameReq", fields) else {
            return fail(-1, "invalid arguments")
        }
        guard let mac = Self.normalizeMAC(body.string("Mac")) else { return fail(-2, "invalid MAC address") }
        let name = body.string("Name").split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        let done = state.withLock { s -> Bool in
            guard var history = s.wolHistory,
                let index = history.firstIndex(where: { $0 == mac || $0.hasPrefix(mac + " ") })
            else { return false }
            history[index] = name.isEmpty ? mac : "\(mac) \(name)"
            s.wolHistory = history
            return true
        }
        return done ? ok() : fail(-3, "write failed")
    }

    func wifi(_ c: RouteContext) async -> SimResponse {
        let w = state.withLock { $0.wifi }
        if profile.atLeast("2.3.1") {
            return ok(["supported": .bool(w.supported), "apMode": .bool(w.apMode), "connected": .bool(w.connected), "ssid": .string(w.connected ? w.ssid : "")])
        }
        return ok(["supported": .bool(w.supported), "connected": .bool(w.connected)])
    }

    func wifiSetup(_ c: RouteContext) async -> SimResponse {
        let apMode = state.withLock { $0.wifi.apMode }
        if !apMode, profile.atLeast("2.3.1") {
            await deviceDelay(milliseconds: 2000)
            return fail(-1, "invalid mode")
        }
        await deviceDelay(milliseconds: 1000)
        return fail(-2, "invalid parameters")
    }

    func wifiVerify(_ c: RouteContext) async -> SimResponse {
        await deviceDelay(milliseconds: 2000)
        return fail(-1, "invalid mode")
    }

    func wifiConnect(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Ssid", .string, required: true), GoField("Password", .string, required: true)]
        guard case .success = RequestBinder.bind(c.request, "ConnectWifiReq", fields) else { return fail(-1, "invalid arguments") }
        await deviceDelay(milliseconds: 14000)
        return fail(-2, "failed to connect wifi")
    }

    func wifiDisconnect(_ c: RouteContext) async -> SimResponse {
        await deviceDelay(milliseconds: 5000)
        return fail(-1, "failed to stop wifi")
    }

    func dns(_ c: RouteContext) async -> SimResponse {
        let (mode, servers, dhcp) = state.withLock { ($0.dnsMode, $0.dnsServers, $0.dhcpDNS) }
        func list(_ items: [String]) -> JSONValue { items.isEmpty ? .null : .array(items.map { .string($0) }) }
        let effective = mode == "manual" ? servers : dhcp
        return ok([
            "mode": .string(mode), "servers": list(servers), "effective": list(effective), "dhcp": list(dhcp),
            "info": [
                "interface": "eth0", "type": "Wired", "address": .string(deviceIP), "subnetMask": "255.255.255.0",
                "gateway": "192.168.1.1", "searchDomains": .null,
            ],
        ])
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    func setDNS(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Mode", .string, json: "mode", required: true), GoField("Servers", .stringArray, json: "servers")]
        guard case let .success(body) = RequestBinder.bind(c.request, "SetDNSReq", fields),
            ["manual", "dhcp"].contains(body.string("Mode"))
        else { return fail(-1, "invalid arguments") }
        if body.string("Mode") == "dhcp" {
            state.withLock { $0.dnsMode = "dhcp" }
            return ok()
        }
        var servers: [String] = []
        for raw in body.strings("Servers") {
            let server = raw.trimmingCharacters(in: .whitespaces)
            if server.isEmpty { continue }
            guard Self.isIPAddress(server) else { return fail(-2, "invalid dns server: \(server)") }
            if !servers.contains(server) { servers.append(server) }
        }
        if servers.isEmpty { return fail(-2, "dns servers are required") }
        if servers.count > 6 { return fail(-2, "too many dns servers") }
        state.withLock { s in
            s.dnsMode = "manual"
            s.dnsServers = servers
        }
        return ok()
    }

    // MARK: Tailscale

    func tailscaleStatus(_ c: RouteContext) async -> SimResponse {
        let (stateName, hostname) = self.state.withLock { ($0.tailscale, $0.hostname) }
        let running = stateName == "running"
        let key = profile.atLeast("2.1.4") ? "state" : "status"
        var reported = stateName
        if !profile.atLeast("2.1.6"), reported == "notRunning" { reported = "stopped" }
        return ok([
            key: .string(reported), "name": .string(running ? hostname : ""), "ip": .string(running ? "100.101.102.103" : ""),
            "account": .string(running ? "simulated@example.com" : ""),
        ])
    }

    func tailscaleAction(_ action: String, _ c: RouteContext) async -> SimResponse {
        await deviceDelay(milliseconds: action == "install" ? 2000 : 200)
        let result = state.withLock { s -> (Int, String, JSONValue)? in
            let installed = s.tailscale != "notInstall"
            switch action {
            case "install":
                if !installed { s.tailscale = "notLogin" }
            case "uninstall":
                s.tailscale = "notInstall"
                s.tailscaleLoggedIn = false
            case "start", "restart":
                guard installed else { return (-1, "\(action) failed", .null) }
                s.tailscale = s.tailscaleLoggedIn ? "running" : "notLogin"
            case "stop":
                guard installed else { return (-1, "stop failed", .null) }
                s.tailscale = "notRunning"
            case "up":
                guard installed, s.tailscaleLoggedIn else { return (-1, "tailscale up failed", .null) }
                s.tailscale = "running"
            case "down":
                guard installed, s.tailscaleLoggedIn else { return (-1, "tailscale down failed", .null) }
                s.tailscale = "stopped"
            case "login":
                guard installed, s.tailscale != "notRunning" else { return (-1, "unknown status", .null) }
                if s.tailscale == "running" { return (0, "success", ["url": ""]) }
                s.tailscaleLoggedIn = true
                s.tailscale = "running"
                return (0, "success", ["url": "https://login.tailscale.com/a/nanokvm-sim"])
            case "logout":
                guard installed else { return (-1, "logout failed", .null) }
                s.tailscaleLoggedIn = false
                s.tailscale = "notLogin"
            default:
                return nil
            }
            return (0, "success", .null)
        }
        guard let result else { return Self.notFound }
        if result.0 != 0 { return fail(result.0, result.1) }
        return ok(result.2)
    }

    /// 2.0.x–2.1.3: `POST …/tailscale/status {"command":"up"|"down"}`.
    func tailscaleCommand(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "UpdateTailscaleStatusReq", [GoField("Command", .string, required: true)]),
            ["up", "down"].contains(body.string("Command"))
        else { return fail(-1, "invalid arguments") }
        let response = await tailscaleAction(body.string("Command"), c)
        let current = state.withLock { $0.tailscale }
        if response.body.starts(with: Array(#"{"code":0"#.utf8)) { return ok(["status": .string(current)]) }
        return response
    }

    // MARK: Application

    func applicationVersion(_ c: RouteContext) async -> SimResponse {
        // The device asks the update server on the internet; the simulated one is offline.
        fail(-1, "failed to query latest version")
    }

    func applicationUpdate(_ c: RouteContext) async -> SimResponse {
        fail(-1, "update failed: no internet access")
    }

    func preview(_ c: RouteContext) async -> SimResponse {
        ok(["enabled": .bool(state.withLock { $0.previewUpdates })])
    }

    func setPreview(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetPreviewReq", [GoField("Enable", .bool)]) else {
            return fail(-1, "invalid arguments")
        }
        state.withLock { $0.previewUpdates = body.bool("Enable") }
        return ok()
    }

    func updateServer(_ c: RouteContext) async -> SimResponse {
        let server = state.withLock { $0.updateServer }
        return ok(["enabled": .bool(server.enabled), "url": .string(server.url)])
    }

    func setUpdateServer(_ c: RouteContext) async -> SimResponse {
        let fields = [
            GoField("Enabled", .optionalBool, json: "enabled", form: "enabled", required: true),
            GoField("URL", .string, json: "url", form: "url"),
        ]
        guard case let .success(body) = RequestBinder.bind(c.request, "SetUpdateServerReq", fields) else {
            return fail(-1, "invalid arguments")
        }
        let enabled = body.optionalBool("Enabled") ?? false
        let url = body.string("URL").trimmingCharacters(in: .whitespaces)
        if enabled {
            if url.isEmpty { return fail(-2, "update server URL is required") }
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                return fail(-2, "invalid update server URL")
            }
        }
        state.withLock { $0.updateServer = (enabled, enabled ? url : "") }
        return ok(["enabled": .bool(enabled), "url": .string(enabled ? url : "")])
    }

    // MARK: Downloads

    func downloadEnabled(_ c: RouteContext) async -> SimResponse { ok(["enabled": true]) }

    func downloadStatus(_ c: RouteContext) async -> SimResponse {
        let status = state.withLock { $0.downloadStatus }
        return ok(["status": .string(status.status), "file": .string(status.file), "percentage": .string(status.percentage)])
    }

    func downloadImage(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("File", .string, json: "file", required: true), GoField("SHA256Sum", .string, json: "sha256sum")]
        guard case let .success(body) = RequestBinder.bind(c.request, "DownloadImageReq", fields) else {
            return fail(-1, "invalid arguments")
        }
        let file = body.string("File")
        guard let url = URL(string: file), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            return fail(-1, "invalid url")
        }
        let sum = body.string("SHA256Sum")
        if !sum.isEmpty, sum.count != 64 || !sum.allSatisfy(\.isHexDigit) { return fail(-1, "invalid sha256sum") }
        if !profile.atLeast("2.5.0") {
            // ≤2.4.3 checks the URL with a HEAD request inside the call; offline it crashes.
            return Self.panicked
        }
        let busy = state.withLock { s -> Bool in
            if s.downloadStatus.status == "in_progress" { return true }
            s.downloadStatus = ("in_progress", file, "")
            return false
        }
        if busy { return fail(-1, "download in progress") }
        Task(executorPreference: SimulatorExecutor.shared) { [weak self] in
            try? await Task.sleep(for: .milliseconds(200))
            self?.state.withLock { s in
                if s.downloadStatus.status == "in_progress" { s.downloadStatus = ("failed", file, "") }
            }
        }
        return ok(["status": "in_progress", "file": .string(file), "percentage": ""])
    }

    func cancelDownload(_ c: RouteContext) async -> SimResponse {
        let cancelled = state.withLock { s -> Bool in
            guard s.downloadStatus.status == "in_progress" else { return false }
            s.downloadStatus = ("idle", "", "")
            return true
        }
        return cancelled ? ok() : fail(-1, "no cancellable download in progress")
    }

    func uploadISO(_ c: RouteContext) async -> SimResponse {
        guard let part = Multipart.parse(c.request).first(where: { $0.name == "file" && $0.filename != nil }),
            let name = part.filename
        else { return fail(-1, "invalid arguments") }
        guard name.range(of: "^[A-Za-z0-9._-]+\\.iso$", options: .regularExpression) != nil else {
            return fail(-1, "only .iso files allowed")
        }
        let magic = Array("CD001".utf8)
        guard part.data.count >= 0x8006, Array(part.data[0x8001..<0x8006]) == magic else {
            return fail(-1, "file is not a valid ISO image")
        }
        state.withLock { $0.images["/data/\(name)"] = part.data.count }
        return ok(["status": "idle", "file": "", "percentage": ""])
    }

    // MARK: AI control and MCP (2.5.0+)

    func aiStatus(_ c: RouteContext) async -> SimResponse {
        ok(["mode": .string(state.withLock { $0.aiControlMode })])
    }

    func setAIMode(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetControlModeReq", [GoField("Mode", .string, json: "mode", required: true)]),
            ["off", "mcp", "picoclaw"].contains(body.string("Mode"))
        else { return Self.json(.ok, ["code": -1, "message": "invalid mode"]) }
        state.withLock { $0.aiControlMode = body.string("Mode") }
        return ok(["mode": .string(body.string("Mode"))])
    }

    func mcpConfig(_ c: RouteContext) async -> SimResponse {
        let (enabled, key, mode) = state.withLock { ($0.mcpEnabled, $0.mcpKey, $0.aiControlMode) }
        return ok(["enabled": .bool(enabled), "apiKey": .string(key), "controlMode": .string(mode), "transitioning": false])
    }

    func setMCPConfig(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetMCPConfigReq", [GoField("Enabled", .bool, json: "enabled")]) else {
            return fail(-1, "invalid arguments")
        }
        state.withLock { $0.mcpEnabled = body.bool("Enabled") }
        return await mcpConfig(c)
    }

    func regenerateMCPKey(_ c: RouteContext) async -> SimResponse {
        state.withLock { $0.mcpKey = GoBase64.encodeURL(DeviceCrypto.randomBytes(24)) }
        return await mcpConfig(c)
    }

    /// WebSocket routes after authentication: gorilla's handshake checks (400), main's Origin
    /// check (403), then the upgrade. Only `/api/ws` and the terminal are simulated; the
    /// H.264 sockets refuse with 400.
    func webSocketFallback(_ c: RouteContext) async -> SimResponse {
        var headers: [(String, String)] = [("Sec-Websocket-Version", "13"), ("X-Content-Type-Options", "nosniff")]
        let simulated = c.request.path == "/api/ws" || c.request.path == "/api/vm/terminal"
        guard c.request.isWebSocketHandshake, simulated else {
            var response = Self.plain(.badRequest, "Bad Request\n", contentType: "text/plain; charset=utf-8")
            response.headers += headers
            return response
        }
        if profile.multiUser,
            !Self.originAllowed(c.request.header("Origin"), host: c.request.header("Host"), forwardedProto: c.request.header("X-Forwarded-Proto"))
        {
            headers.removeFirst()
            var response = Self.plain(.forbidden, "Forbidden\n", contentType: "text/plain; charset=utf-8")
            response.headers += headers
            return response
        }
        var response = SimResponse(status: .switchingProtocols)
        response.upgradeToWebSocket = true
        return response
    }
}
