// Wake-on-LAN, Wi-Fi and DNS (protocol §6.6).

/// A MAC address in the device's history, with its optional name.
public struct WakeTarget: Sendable, Equatable {
    public var mac: String
    public var name: String?
}

public struct WiFiStatus: Sendable, Equatable {
    /// The model has Wi-Fi.
    public var supported: Bool
    /// The device is its own access point for first-time setup (2.3.1+; false before).
    public var accessPointMode: Bool
    public var connected: Bool
    /// Network name while connected (2.3.1+), else "".
    public var ssid: String
}

public enum DNSMode: String, Sendable {
    case dhcp
    case manual
}

public struct DNSSettings: Sendable, Equatable {
    public var mode: DNSMode
    /// Configured manual servers.
    public var servers: [String]
    /// What /etc/resolv.conf uses now.
    public var effective: [String]
    /// What DHCP offered.
    public var dhcp: [String]
    /// Interface details (`interface`, `type`, `address`, `subnetMask`, `gateway`, `searchDomains`).
    public var info: JSONValue
}

public struct NetworkAPI: Sendable {
    let client: NanoKVMClient

    /// Normalises a MAC (`AA:BB:…`, `aa-bb-…`, `aabb.ccdd.eeff`, 12 hex digits) to `AA:BB:CC:DD:EE:FF`.
    public static func normalisedMAC(_ text: String) -> String? {
        let hex = text.uppercased().filter { $0 != ":" && $0 != "-" && $0 != "." && $0 != " " }
        guard hex.count == 12, hex.allSatisfy(\.isHexDigit) else { return nil }
        var out = ""
        for (index, c) in hex.enumerated() {
            if index > 0 && index % 2 == 0 { out.append(":") }
            out.append(c)
        }
        return out
    }

    func mac(_ text: String, _ endpoint: APIEndpoint) throws(NanoKVMError) -> String {
        guard let mac = Self.normalisedMAC(text) else {
            throw NanoKVMError(.usage, "'\(text)' is not a MAC address", method: endpoint.method, path: endpoint.path, device: client.device)
        }
        return mac
    }

    /// Sends a Wake-on-LAN magic packet from the device (which remembers the MAC).
    public func wake(_ macAddress: String) async throws(NanoKVMError) {
        let mac = try mac(macAddress, .wakeOnLAN)
        try await client.call(.wakeOnLAN, body: .json(["mac": .string(mac)]), timeout: client.timeout + .seconds(5))
    }

    /// The remembered MACs. A device that never sent a packet answers −2 before 2.4.2; that is
    /// an empty list here.
    public func wakeTargets() async throws(NanoKVMError) -> [WakeTarget] {
        let envelope = try await client.callEnvelope(.wakeHistory)
        if envelope.code == -2 && !client.profile.atLeast(2, 4, 2) { return [] }
        guard envelope.code == 0 else { throw client.apiError(envelope, endpoint: .wakeHistory) }
        let entries = try client.read(envelope.data, .wakeHistory) { reader throws(NanoKVMError) in try reader.strings("macs") }
        return entries.compactMap { entry -> WakeTarget? in
            let trimmed = Substring(entry).trimmingSpaces()
            guard !trimmed.isEmpty else { return nil }
            let parts = trimmed.split(separator: " ", maxSplits: 1)
            let name = parts.count > 1 ? parts[1].trimmingSpaces() : nil
            return WakeTarget(mac: String(parts[0]), name: name?.isEmpty == true ? nil : name)
        }
    }

    public func deleteWakeTarget(_ macAddress: String) async throws(NanoKVMError) {
        let mac = try mac(macAddress, .deleteWakeTarget)
        try await client.call(.deleteWakeTarget, body: .json(["mac": .string(mac)]))
    }

    /// Names a remembered MAC (2.2.6+).
    public func nameWakeTarget(_ macAddress: String, name: String) async throws(NanoKVMError) {
        let mac = try mac(macAddress, .nameWakeTarget)
        try await client.call(.nameWakeTarget, body: .json(["mac": .string(mac), "name": .string(name)]))
    }

    // MARK: Wi-Fi

    public func wifi() async throws(NanoKVMError) -> WiFiStatus {
        let data = try await client.call(.wifi)
        return try client.read(data, .wifi) { reader throws(NanoKVMError) in
            WiFiStatus(
                supported: try reader.bool("supported"), accessPointMode: try reader.optionalBool("apMode") ?? false,
                connected: try reader.bool("connected"), ssid: try reader.optionalString("ssid") ?? "")
        }
    }

    /// Joins a network (2.3.1+); blocks 14–18 s while the device associates.
    public func connectWiFi(ssid: String, password: String) async throws(NanoKVMError) {
        let body: JSONValue = ["ssid": .string(ssid), "password": .string(password)]
        try await client.call(.wifiConnect, body: .json(body), timeout: client.timeout + .seconds(30))
    }

    /// Leaves and forgets the network (2.3.1+; blocks about 5 s).
    public func disconnectWiFi() async throws(NanoKVMError) {
        try await client.call(.wifiDisconnect, timeout: client.timeout + .seconds(10))
    }

    /// First-time Wi-Fi setup while the device is its own access point (no login needed there).
    /// `accessPointKey` is the AP password the device shows (2.3.6+).
    public func configureWiFiInAccessPointMode(ssid: String, password: String, accessPointKey: String? = nil) async throws(NanoKVMError) {
        let endpoint: APIEndpoint = client.profile.atLeast(2, 1, 4) ? .wifiSetup : .wifiSetupLegacy
        var headers: [(name: String, value: String)] = []
        if let accessPointKey { headers.append((name: "X-AP-Key", value: accessPointKey)) }
        let body: JSONValue = ["ssid": .string(ssid), "password": .string(password)]
        try await client.call(endpoint, body: .json(body), timeout: client.timeout + .seconds(10), headers: headers)
    }

    /// Checks an access-point key (2.3.6+).
    public func verifyAccessPointKey(_ key: String) async throws(NanoKVMError) {
        try await client.call(.wifiVerifyAPKey, headers: [(name: "X-AP-Key", value: key)])
    }

    // MARK: DNS (2.4.1+)

    public func dns() async throws(NanoKVMError) -> DNSSettings {
        let data = try await client.call(.dns)
        return try client.read(data, .dns) { reader throws(NanoKVMError) in
            let modeText = try reader.string("mode")
            guard let mode = DNSMode(rawValue: modeText) else { throw reader.fail("mode", "dhcp or manual") }
            return DNSSettings(
                mode: mode, servers: try reader.strings("servers"), effective: try reader.strings("effective"),
                dhcp: try reader.strings("dhcp"), info: data["info"] ?? .null)
        }
    }

    /// `.manual` with 1–6 IPv4/IPv6 servers, or `.dhcp`.
    public func setDNS(_ mode: DNSMode, servers: [String] = []) async throws(NanoKVMError) {
        if mode == .manual && (servers.isEmpty || servers.count > 6) {
            throw NanoKVMError(.usage, "manual DNS needs 1–6 servers", method: "POST", path: APIEndpoint.setDNS.path, device: client.device)
        }
        let body: JSONValue = ["mode": .string(mode.rawValue), "servers": .array(servers.map { .string($0) })]
        try await client.call(.setDNS, body: .json(body))
    }
}

extension NanoKVMClient {
    public var network: NetworkAPI { NetworkAPI(client: self) }
}
