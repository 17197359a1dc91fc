// §6.2: device information, ATX buttons and LEDs, screen settings, virtual USB devices,
// scripts, and the system settings (SSH, mDNS, OLED, swap, memory, HDMI, jiggler, hostname,
// web title, TLS, autostart, reboot).

import Foundation
import NanoKVM

extension Device {
    var deviceIP: String {
        let host = configuration.host
        if host.split(separator: ".").count == 4, host != "0.0.0.0" { return host }
        return "192.168.1.20"
    }

    func info(_ c: RouteContext) async -> SimResponse {
        let (hostname, mdns) = state.withLock { ($0.hostname, $0.mdnsEnabled) }
        let mdnsName: JSONValue = .string(mdns ? "\(hostname).local" : "")
        let image: JSONValue = .string(profile.oldPaths ? "2024-08-17-18-13-713161.img" : "v1.4.1")
        let version: JSONValue = .string(configuration.effectiveApplicationVersion)
        let deviceKey: JSONValue = "4a3f0c2e9b7d15e8a6c4f2b0d8e6a4c2"
        if profile.ipsArray {
            let ips: JSONValue = [["name": "eth0", "addr": .string(deviceIP), "version": "IPv4", "type": "Wired"]]
            return ok(["ips": ips, "mdns": mdnsName, "image": image, "application": version, "deviceKey": deviceKey])
        }
        return ok([
            "ip": .string(deviceIP), "mdns": mdnsName, "image": image,
            (profile.oldPaths ? "firmware" : "application"): version, "deviceKey": deviceKey,
        ])
    }

    func hardware(_ c: RouteContext) async -> SimResponse {
        ok(["version": .string(configuration.hardware)])
    }

    // MARK: ATX

    func leds(_ c: RouteContext) async -> SimResponse {
        let hdd = configuration.hardware == "Alpha" && host.diskBusy
        return ok(["pwr": .bool(host.poweredOn), "hdd": .bool(hdd)])
    }

    func pressButton(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Type", .string, required: true), GoField("Duration", .uint)]
        let body: BoundRequest
        switch RequestBinder.bind(c.request, "SetGpioReq", fields) {
        case let .success(b): body = b
        case let .failure(error): return fail(-1, "invalid arguments: \(error.message)")
        }
        let type = body.string("Type")
        guard type == "power" || type == "reset" else { return fail(-2, "invalid power event: \(type)") }
        let requested = body.int("Duration")
        let duration = Double(requested > 0 ? requested : 800)
        if type == "reset" {
            state.withLock { $0.resetButtonDown = true }
            await deviceDelay(milliseconds: duration)
            state.withLock { $0.resetButtonDown = false }
            host.reboot(diskActivity: .milliseconds(3000 * max(configuration.timeScale, 0)))
            return ok()
        }
        state.withLock { $0.powerButtonDown = true }
        let wasOn = host.poweredOn
        // A press of 5 s or more forces an ATX host off at the 5 s mark; shorter presses act
        // when the button is released (power on, or an orderly shutdown).
        let forceOffAfter = 5000.0
        if duration >= forceOffAfter {
            await deviceDelay(milliseconds: forceOffAfter)
            host.setPower(false)
            await deviceDelay(milliseconds: duration - forceOffAfter)
        } else {
            await deviceDelay(milliseconds: duration)
            host.setPower(!wasOn, diskActivity: .milliseconds(3000 * max(configuration.timeScale, 0)))
        }
        state.withLock { $0.powerButtonDown = false }
        return ok()
    }

    // MARK: Screen

    func setScreen(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Type", .string, required: true), GoField("Value", .int)]
        guard case let .success(body) = RequestBinder.bind(c.request, "SetScreenReq", fields) else {
            return fail(-1, "invalid arguments")
        }
        let value = body.int("Value")
        switch body.string("Type") {
        case "type" where profile.atLeast("2.1.1"):
            state.withLock { $0.screenType = value == 0 ? "mjpeg" : "h264" }
        case "gop" where profile.atLeast("2.2.3"):
            capture.settings.withLock { $0.gop = (1...100).contains(value) ? value : 30 }
        case "fps":
            capture.settings.withLock { $0.fps = min(max(value, 10), 60) }
        case "quality":
            if value <= 100 { capture.settings.withLock { $0.quality = min(max(value, 1), 100) } }
        case "resolution":
            if [0, 1080, 720, 600, 480].contains(value) { capture.settings.withLock { $0.resolution = value } }
        default:
            return fail(-2, "update screen failed")
        }
        return ok()
    }

    // MARK: Virtual devices

    func virtualDevices(_ c: RouteContext) async -> SimResponse {
        let (network, disk) = state.withLock { ($0.networkDevice, $0.diskDevice) }
        if profile.virtualMediaKey {
            return ok(["network": .bool(network), "media": false, "disk": .bool(disk)])
        }
        return ok(["network": .bool(network), "disk": .bool(disk)])
    }

    func toggleVirtualDevice(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "UpdateVirtualDeviceReq", [GoField("Device", .string, required: true)]) else {
            return fail(-1, "invalid argument")
        }
        let device = body.string("Device")
        guard device == "network" || device == "disk" else { return fail(-2, "invalid arguments") }
        // Restarting the gadget re-enumerates every USB function on the host.
        await deviceDelay(milliseconds: 300)
        host.usbReenumerated()
        let on = state.withLock { s -> Bool in
            if device == "network" {
                s.networkDevice.toggle()
                return s.networkDevice
            }
            s.diskDevice.toggle()
            if !s.diskDevice { s.mountedFile = "" }
            return s.diskDevice
        }
        presentMediaToHost()
        return ok(["on": .bool(on)])
    }

    // MARK: Scripts

    func scripts(_ c: RouteContext) async -> SimResponse {
        guard let scripts = state.withLock({ $0.scripts }) else { return fail(-1, "get scripts failed") }
        let names = scripts.keys.sorted()
        return ok(["files": names.isEmpty ? .null : .array(names.map { .string($0) })])
    }

    func uploadScript(_ c: RouteContext) async -> SimResponse {
        guard RequestBinder.contentType(c.request) == "multipart/form-data",
            let file = Multipart.parse(c.request).first(where: { $0.name == "file" && $0.filename != nil }),
            let name = file.filename.map({ ($0 as NSString).lastPathComponent })
        else { return fail(-1, "bad request") }
        let lower = name.lowercased()
        guard lower.hasSuffix(".sh") || lower.hasSuffix(".py") else { return fail(-2, "invalid arguments") }
        state.withLock { s in
            var scripts = s.scripts ?? [:]
            scripts[name] = String(decoding: file.data, as: UTF8.self)
            s.scripts = scripts
        }
        return ok(["file": .string(name)])
    }

    func runScript(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Name", .string, required: true), GoField("Type", .string, required: true)]
        guard case let .success(body) = RequestBinder.bind(c.request, "RunScriptReq", fields) else {
            return fail(-1, "invalid arguments")
        }
        let name = body.string("Name")
        guard let content = state.withLock({ $0.scripts?[name] }) else { return fail(-2, "run script failed") }
        if body.string("Type") == "background" { return ok(["log": ""]) }
        // Scripts are not executed: the simulated device reports what it would have run.
        let log = "nanokvm-sim: \(name) (\(content.utf8.count) bytes) is not executed by the simulator\n"
        return ok(["log": .string(log)])
    }

    func deleteScript(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "DeleteScriptReq", [GoField("Name", .string, required: true)]) else {
            return fail(-1, "invalid arguments")
        }
        let removed = state.withLock { $0.scripts?.removeValue(forKey: body.string("Name")) != nil }
        return removed ? ok() : fail(-3, "delete failed")
    }

    // MARK: Settings

    func memoryLimit(_ c: RouteContext) async -> SimResponse {
        let limit = state.withLock { $0.memoryLimit }
        return ok(["enabled": .bool(limit != nil), "limit": .integer(Int64(limit ?? 0))])
    }

    func setMemoryLimit(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Enabled", .bool), GoField("Limit", .int)]
        guard case let .success(body) = RequestBinder.bind(c.request, "SetMemoryLimitReq", fields) else {
            return fail(-1, "invalid arguments")
        }
        state.withLock { $0.memoryLimit = body.bool("Enabled") ? max(body.int("Limit"), 50) : nil }
        return ok()
    }

    func oled(_ c: RouteContext) async -> SimResponse {
        let (exists, sleep) = state.withLock { ($0.oledExists, $0.oledSleep) }
        return ok(["exist": .bool(exists), "sleep": .integer(Int64(exists ? sleep : 0))])
    }

    func setOLED(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetOledReq", [GoField("Sleep", .int)]) else {
            return fail(-1, "invalid arguments")
        }
        state.withLock { $0.oledSleep = body.int("Sleep") }
        return ok()
    }

    func hdmiState(_ c: RouteContext) async -> SimResponse {
        let (enabled, timeout) = state.withLock { ($0.hdmiEnabled, $0.hdmiIdleTimeout) }
        if profile.multiUser {
            return ok(["enabled": .bool(enabled), "signal": .bool(enabled && host.poweredOn), "idleTimeout": .integer(Int64(timeout))])
        }
        if profile.atLeast("2.5.0") {
            return ok(["enabled": .bool(enabled), "idleTimeout": .integer(Int64(timeout))])
        }
        return ok(["enabled": .bool(enabled)])
    }

    func setHDMI(_ enabled: Bool) {
        state.withLock { $0.hdmiEnabled = enabled }
        capture.settings.withLock { $0.hdmiEnabled = enabled }
    }

    func hdmiReset(_ c: RouteContext) async -> SimResponse {
        setHDMI(false)
        await deviceDelay(milliseconds: 1000)
        setHDMI(true)
        return ok()
    }

    func hdmiTimeout(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetHdmiIdleTimeoutReq", [GoField("Minutes", .int)]),
            (0...10080).contains(body.int("Minutes"))
        else { return fail(-1, "invalid arguments") }
        state.withLock { $0.hdmiIdleTimeout = body.int("Minutes") }
        return ok()
    }

    func jiggler(_ c: RouteContext) async -> SimResponse {
        let (enabled, mode) = state.withLock { ($0.jigglerEnabled, $0.jigglerMode) }
        return ok(["enabled": .bool(enabled), "mode": .string(mode)])
    }

    func setJiggler(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Enabled", .bool), GoField("Mode", .string)]
        guard case let .success(body) = RequestBinder.bind(c.request, "SetMouseJigglerReq", fields) else {
            return fail(-1, "invalid arguments")
        }
        let enabled = body.bool("Enabled")
        let done = state.withLock { s -> Bool in
            if enabled {
                s.jigglerEnabled = true
                s.jigglerMode = body.string("Mode")
                return true
            }
            // Disabling removes the config file; without one the removal fails.
            guard s.jigglerEnabled else { return false }
            s.jigglerEnabled = false
            s.jigglerMode = "relative"
            return true
        }
        if done, enabled { startJiggler() }
        return done ? ok() : fail(-2, "operation failed")
    }

    func hostname(_ c: RouteContext) async -> SimResponse {
        ok(["hostname": .string(state.withLock { $0.hostname })])
    }

    func setHostname(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetHostnameReq", [GoField("Hostname", .string, required: true)]) else {
            return fail(-1, "invalid arguments")
        }
        state.withLock { $0.hostname = body.string("Hostname") }
        return ok()
    }

    func webTitle(_ c: RouteContext) async -> SimResponse {
        guard let title = state.withLock({ $0.webTitle }) else { return fail(-1, "read web title failed") }
        return ok(["title": .string(title.replacingOccurrences(of: "\n", with: ""))])
    }

    func setWebTitle(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetWebTitleReq", [GoField("Title", .string)]) else {
            return fail(-1, "invalid arguments")
        }
        let title = body.string("Title")
        if title.isEmpty || title == "NanoKVM" {
            let removed = state.withLock { s -> Bool in
                defer { s.webTitle = nil }
                return s.webTitle != nil
            }
            return removed ? ok() : fail(-2, "reset failed")
        }
        state.withLock { $0.webTitle = title }
        return ok()
    }

    func toggleSetting(_ keyPath: WritableKeyPath<DeviceState, Bool>, _ value: Bool) -> SimResponse {
        state.withLock { $0[keyPath: keyPath] = value }
        return ok()
    }

    func swap(_ c: RouteContext) async -> SimResponse {
        ok(["size": .integer(Int64(state.withLock { $0.swapSize }))])
    }

    func setSwap(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetSwapReq", [GoField("Size", .int)]) else {
            return fail(-1, "invalid arguments")
        }
        let size = body.int("Size")
        let current = state.withLock { $0.swapSize }
        if size == current { return ok() }
        // fallocate, mkswap and swapon take a few seconds on the device.
        await deviceDelay(milliseconds: size == 0 ? 500 : 1200)
        if size < 0 { return fail(-4, "enable swap failed") }
        state.withLock { $0.swapSize = size }
        return ok()
    }

    func setTLS(_ c: RouteContext) async -> SimResponse {
        switch RequestBinder.bind(c.request, "SetTlsReq", [GoField("Enabled", .bool)]) {
        case let .failure(error): return fail(-1, "invalid arguments: \(error.message)")
        case let .success(body):
            // The simulator keeps serving plain HTTP; it records the wish like the config file.
            state.withLock { $0.tlsEnabled = body.bool("Enabled") }
            return ok()
        }
    }

    func autostartList(_ c: RouteContext) async -> SimResponse {
        guard let files = state.withLock({ $0.autostart }) else { return fail(-1, "get autostart directory fail") }
        let names = files.keys.sorted()
        return ok(["files": names.isEmpty ? .null : .array(names.map { .string($0) })])
    }

    func autostartContent(_ c: RouteContext) async -> SimResponse {
        let name = c.parameters["name"] ?? ""
        guard let content = state.withLock({ $0.autostart?[name] }) else { return fail(-1, "read file fail") }
        return ok(.string(content))
    }

    func uploadAutostart(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "UploadAutostartReq", [GoField("Content", .string, json: "content")]) else {
            return fail(-1, "parse form request fail")
        }
        let name = c.parameters["name"] ?? ""
        state.withLock { s in
            var files = s.autostart ?? [:]
            files[name] = body.string("Content")
            s.autostart = files
        }
        return ok(.string(name))
    }

    func deleteAutostart(_ c: RouteContext) async -> SimResponse {
        let name = c.parameters["name"] ?? ""
        let removed = state.withLock { $0.autostart?.removeValue(forKey: name) != nil }
        return removed ? ok() : fail(-3, "remove file fail")
    }

    func reboot(_ c: RouteContext) async -> SimResponse {
        scheduleDeviceRestart(after: 300)
        return ok()
    }

    /// The device restarts (reboot, HID mode change): open connections drop and every token
    /// is invalid afterwards (new JWT secret).
    func scheduleDeviceRestart(after milliseconds: Double) {
        Task(executorPreference: SimulatorExecutor.shared) { [weak self] in
            guard let self else { return }
            await self.deviceDelay(milliseconds: milliseconds)
            self.rotateSecret()
            self.events.dropWebSockets()
        }
    }
}
