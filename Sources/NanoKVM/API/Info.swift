// `/api/vm/info` and `/api/vm/hardware` (protocol §6.2.1).

/// One network address the device reports.
public struct DeviceIPAddress: Sendable, Equatable {
    /// Interface name (`eth0`, `wlan0`); empty on firmware before 2.2.6.
    public var interface: String
    public var address: String
    /// `IPv4` (the only kind the device lists).
    public var version: String
    /// `Wired` or `Wireless`; empty before 2.2.6.
    public var type: String
}

/// What `/api/vm/info` says about the device.
public struct DeviceInfo: Sendable, Equatable {
    /// All addresses (2.2.6+: `ips`; before: the single `ip`).
    public var addresses: [DeviceIPAddress]
    /// `<hostname>.local` while mDNS runs, else empty.
    public var mdns: String
    /// OS image version (`v1.4.1`) or raw image file name.
    public var image: String
    /// Application version string (`application`, or `firmware` on 2.0.x).
    public var version: String
    public var deviceKey: String
    /// The device's own `data`, untouched.
    public var raw: JSONValue

    /// The first address, or empty.
    public var ip: String { addresses.first?.address ?? "" }
    public var ips: [String] { addresses.map(\.address) }

    public init(data: JSONValue) throws(NanoKVMError) {
        let reader = try DataReader(data, "GET /api/vm/info")
        var addresses: [DeviceIPAddress] = []
        if reader.has("ips") {
            for item in try reader.objects("ips") {
                addresses.append(DeviceIPAddress(
                    interface: try item.optionalString("name") ?? "", address: try item.string("addr"),
                    version: try item.optionalString("version") ?? "IPv4", type: try item.optionalString("type") ?? ""))
            }
        } else if let single = try reader.optionalString("ip"), !single.isEmpty {
            addresses.append(DeviceIPAddress(interface: "", address: single, version: "IPv4", type: ""))
        }
        self.addresses = addresses
        self.mdns = try reader.optionalString("mdns") ?? ""
        self.image = try reader.optionalString("image") ?? ""
        let application = try reader.optionalString("application")
        let firmware = try reader.optionalString("firmware")
        guard let version = application ?? firmware else {
            throw NanoKVMError(.protocol, "GET /api/vm/info: neither 'application' nor 'firmware' is present")
        }
        self.version = version
        self.deviceKey = try reader.optionalString("deviceKey") ?? ""
        self.raw = data
    }
}

extension NanoKVMClient {
    /// Reads `/api/vm/info` now.
    public func info() async throws(NanoKVMError) -> DeviceInfo {
        let data = try await call(.info)
        do {
            return try DeviceInfo(data: data)
        } catch {
            var copy = error
            copy.method = "GET"; copy.path = APIEndpoint.info.path; copy.device = device
            throw copy
        }
    }

    /// The hardware revision (`Alpha`, `Beta`, `PCIE`, `Unknown`); nil on firmware before 2.1.5,
    /// which has no such endpoint (no error, as the Lua API wants).
    public func hardware() async throws(NanoKVMError) -> String? {
        guard profile.supports(.hardware) else { return nil }
        let data = try await call(.hardware)
        return try read(data, .hardware) { reader throws(NanoKVMError) in try reader.string("version") }
    }

    /// Decodes `data` with `body`, filling method/path/device into a `protocol` error.
    func read<T>(_ data: JSONValue, _ endpoint: APIEndpoint, path: String? = nil, _ body: (DataReader) throws(NanoKVMError) -> T) throws(NanoKVMError) -> T {
        do {
            return try body(try DataReader(data, endpoint.description))
        } catch {
            var copy = error
            copy.method = endpoint.method; copy.path = path ?? endpoint.path; copy.device = device
            throw copy
        }
    }
}
