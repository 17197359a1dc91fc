// Device settings under /api/vm (protocol §6.2.7): SSH, mDNS, OLED, swap, memory limit,
// HDMI capture, mouse jiggler, host name, web title, TLS, autostart scripts, reboot.

public struct OLEDSettings: Sendable, Equatable {
    /// The device has an OLED display.
    public var present: Bool
    /// Seconds until the display sleeps; 0 = never.
    public var sleepSeconds: Int
}

public struct MemoryLimit: Sendable, Equatable {
    public var enabled: Bool
    /// Megabytes (the server applies at least 50).
    public var megabytes: Int
}

public struct HDMIStatus: Sendable, Equatable {
    /// Capture not switched off by the user.
    public var enabled: Bool
    /// The capture chip sees an input signal (multi-user firmware only; nil elsewhere).
    public var signal: Bool?
    /// Minutes without a viewer before capture stops (2.5.0+; nil before); 0 = never.
    public var idleTimeoutMinutes: Int?
    public var raw: JSONValue
}

public enum MouseJigglerMode: String, Sendable {
    case relative
    case absolute
}

public struct MouseJigglerSettings: Sendable, Equatable {
    public var enabled: Bool
    public var mode: MouseJigglerMode
}

public struct SystemAPI: Sendable {
    let client: NanoKVMClient

    func flag(_ endpoint: APIEndpoint, _ key: String = "enabled") async throws(NanoKVMError) -> Bool {
        let data = try await client.call(endpoint)
        return try client.read(data, endpoint) { reader throws(NanoKVMError) in try reader.bool(key) }
    }

    // MARK: SSH and mDNS

    public func sshEnabled() async throws(NanoKVMError) -> Bool { try await flag(.sshState) }
    public func setSSH(enabled: Bool) async throws(NanoKVMError) { try await client.call(enabled ? .sshEnable : .sshDisable) }
    public func mdnsEnabled() async throws(NanoKVMError) -> Bool { try await flag(.mdnsState) }
    public func setMDNS(enabled: Bool) async throws(NanoKVMError) { try await client.call(enabled ? .mdnsEnable : .mdnsDisable) }

    // MARK: OLED, swap, memory limit

    public func oled() async throws(NanoKVMError) -> OLEDSettings {
        let data = try await client.call(.oled)
        return try client.read(data, .oled) { reader throws(NanoKVMError) in
            OLEDSettings(present: try reader.bool("exist"), sleepSeconds: try reader.int("sleep"))
        }
    }

    /// Seconds until the OLED sleeps (0 = never). Values over 255 work from 2.5.0.
    public func setOLEDSleep(seconds: Int) async throws(NanoKVMError) {
        guard seconds >= 0 else { throw usage(.setOLED, "OLED sleep must be ≥ 0 seconds") }
        try await client.call(.setOLED, body: .json(["sleep": .integer(Int64(seconds))]))
    }

    /// Swap size in MB (0 = none).
    public func swapSize() async throws(NanoKVMError) -> Int {
        let data = try await client.call(.swap)
        return try client.read(data, .swap) { reader throws(NanoKVMError) in try reader.int("size") }
    }

    /// Sets the swap size in MB (the UI offers 0, 64, 128, 256, 512); blocks while the device
    /// creates the swap file.
    public func setSwapSize(megabytes: Int) async throws(NanoKVMError) {
        guard megabytes >= 0 else { throw usage(.setSwap, "swap size must be ≥ 0 MB") }
        try await client.call(.setSwap, body: .json(["size": .integer(Int64(megabytes))]), timeout: client.timeout + .seconds(60))
    }

    public func memoryLimit() async throws(NanoKVMError) -> MemoryLimit {
        let data = try await client.call(.memoryLimit)
        return try client.read(data, .memoryLimit) { reader throws(NanoKVMError) in
            MemoryLimit(enabled: try reader.bool("enabled"), megabytes: try reader.int("limit"))
        }
    }

    public func setMemoryLimit(enabled: Bool, megabytes: Int) async throws(NanoKVMError) {
        guard megabytes >= 0 else { throw usage(.setMemoryLimit, "memory limit must be ≥ 0 MB") }
        try await client.call(.setMemoryLimit, body: .json(["enabled": .bool(enabled), "limit": .integer(Int64(megabytes))]))
    }

    // MARK: HDMI

    public func hdmi() async throws(NanoKVMError) -> HDMIStatus {
        let data = try await client.call(.hdmi)
        return try client.read(data, .hdmi) { reader throws(NanoKVMError) in
            HDMIStatus(
                enabled: try reader.bool("enabled"), signal: try reader.optionalBool("signal"),
                idleTimeoutMinutes: try reader.optionalInt("idleTimeout"), raw: data)
        }
    }

    public func setHDMI(enabled: Bool) async throws(NanoKVMError) { try await client.call(enabled ? .hdmiEnable : .hdmiDisable) }

    /// Restarts HDMI capture (blocks about a second).
    public func resetHDMI() async throws(NanoKVMError) { try await client.call(.hdmiReset, timeout: client.timeout + .seconds(5)) }

    /// Minutes without a viewer before capture stops (0…10080; 0 = never).
    public func setHDMIIdleTimeout(minutes: Int) async throws(NanoKVMError) {
        guard (0...10080).contains(minutes) else { throw usage(.hdmiIdleTimeout, "HDMI idle timeout must be 0–10080 minutes") }
        try await client.call(.hdmiIdleTimeout, body: .json(["minutes": .integer(Int64(minutes))]))
    }

    // MARK: Mouse jiggler

    public func mouseJiggler() async throws(NanoKVMError) -> MouseJigglerSettings {
        let data = try await client.call(.mouseJiggler)
        return try client.read(data, .mouseJiggler) { reader throws(NanoKVMError) in
            let mode = try reader.optionalString("mode") ?? "relative"
            return MouseJigglerSettings(enabled: try reader.bool("enabled"), mode: mode == "absolute" ? .absolute : .relative)
        }
    }

    /// Switches the jiggler; does nothing when it is already in that state (the device answers
    /// −2 when asked to disable a disabled jiggler).
    public func setMouseJiggler(enabled: Bool, mode: MouseJigglerMode = .relative) async throws(NanoKVMError) {
        let current = try await mouseJiggler()
        if current.enabled == enabled && (!enabled || current.mode == mode) { return }
        let body: JSONValue = ["enabled": .bool(enabled), "mode": .string(mode.rawValue)]
        try await client.call(.setMouseJiggler, body: .json(body))
    }

    // MARK: Host name and web title

    public func hostname() async throws(NanoKVMError) -> String {
        let data = try await client.call(.hostname)
        return try client.read(data, .hostname) { reader throws(NanoKVMError) in try reader.string("hostname") }
    }

    public func setHostname(_ name: String) async throws(NanoKVMError) {
        guard Self.isValidHostname(name) else {
            throw usage(.setHostname, "host name must be 1–63 letters, digits or '-', not starting or ending with '-': '\(name)'")
        }
        try await client.call(.setHostname, body: .json(["hostname": .string(name)]))
    }

    static func isValidHostname(_ name: String) -> Bool {
        guard (1...63).contains(name.utf8.count), name.first != "-", name.last != "-" else { return false }
        return name.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" }
    }

    /// The browser title of the web UI. The device answers −1 while no custom title is set;
    /// that is reported as the default "NanoKVM".
    public func webTitle() async throws(NanoKVMError) -> String {
        let envelope = try await client.callEnvelope(.webTitle)
        if envelope.code == -1 { return "NanoKVM" }
        guard envelope.code == 0 else { throw client.apiError(envelope, endpoint: .webTitle) }
        return try client.read(envelope.data, .webTitle) { reader throws(NanoKVMError) in try reader.string("title") }
    }

    /// Sets the title; "" or "NanoKVM" restores the default (also when it already is).
    public func setWebTitle(_ title: String) async throws(NanoKVMError) {
        let envelope = try await client.callEnvelope(.setWebTitle, body: .json(["title": .string(title)]))
        let isReset = title.isEmpty || title == "NanoKVM"
        if envelope.code == 0 || (isReset && envelope.code == -2) { return }
        throw client.apiError(envelope, endpoint: .setWebTitle)
    }

    // MARK: TLS and reboot

    /// Switches the device's HTTPS on or off. The device restarts its server inside the
    /// request, so a connection that breaks is taken as success; reconnect afterwards (with
    /// https:// and a pin or `insecure` after enabling).
    public func setTLS(enabled: Bool) async throws(NanoKVMError) {
        do {
            try await client.call(.setTLS, body: .json(["enabled": .bool(enabled)]))
        } catch where error.isLostAnswer {
            return
        }
    }

    /// Reboots the device; a lost answer counts as success.
    public func reboot() async throws(NanoKVMError) {
        do {
            try await client.call(.reboot)
        } catch where error.isLostAnswer {
            return
        }
    }

    // MARK: Autostart scripts (/etc/kvm/autostart)

    public func autostartScripts() async throws(NanoKVMError) -> [String] {
        let data = try await client.call(.autostartScripts)
        return try client.read(data, .autostartScripts) { reader throws(NanoKVMError) in try reader.strings("files") }
    }

    public func autostartScript(named name: String) async throws(NanoKVMError) -> String {
        let path = try autostartPath(name, .autostartScript)
        let data = try await client.call(.autostartScript, path: path)
        guard let text = data.stringValue else {
            throw NanoKVMError(.protocol, "autostart script content is not a string", method: "GET", path: path, device: client.device)
        }
        return text
    }

    public func saveAutostartScript(named name: String, content: String) async throws(NanoKVMError) {
        let path = try autostartPath(name, .saveAutostartScript)
        try await client.call(.saveAutostartScript, path: path, body: .json(["content": .string(content)]))
    }

    public func deleteAutostartScript(named name: String) async throws(NanoKVMError) {
        let path = try autostartPath(name, .deleteAutostartScript)
        try await client.call(.deleteAutostartScript, path: path)
    }

    func autostartPath(_ name: String, _ endpoint: APIEndpoint) throws(NanoKVMError) -> String {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw usage(endpoint, "autostart script name must be a plain file name, got '\(name)'")
        }
        return "/api/vm/autostart/" + URLEncoding.encodePathSegment(name)
    }

    func usage(_ endpoint: APIEndpoint, _ message: String) -> NanoKVMError {
        NanoKVMError(.usage, message, method: endpoint.method, path: endpoint.path, device: client.device)
    }
}

extension NanoKVMClient {
    public var system: SystemAPI { SystemAPI(client: self) }
}

extension NanoKVMError {
    /// The request went out but its answer was lost (connection dropped or timed out), as
    /// happens when the device restarts inside the request. A refused connection is not.
    var isLostAnswer: Bool {
        kind == .timeout || (kind == .transport && !message.hasPrefix("cannot "))
    }
}
