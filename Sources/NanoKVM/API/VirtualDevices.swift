// Virtual USB devices (protocol §6.2.4). The device only toggles; `set` reads first.

public enum VirtualDevice: String, Sendable, CaseIterable {
    /// USB RNDIS Ethernet gadget.
    case network
    /// USB mass-storage function (needed for image mounting).
    case disk
}

public struct VirtualDeviceStatus: Sendable, Equatable {
    public var network: Bool
    public var disk: Bool
    /// The device's own `data` (2.3.1+ adds an always-false `media`).
    public var raw: JSONValue

    public subscript(device: VirtualDevice) -> Bool {
        switch device {
        case .network: return network
        case .disk: return disk
        }
    }
}

public struct VirtualDevicesAPI: Sendable {
    let client: NanoKVMClient

    public func status() async throws(NanoKVMError) -> VirtualDeviceStatus {
        let data = try await client.call(.virtualDevices)
        return try client.read(data, .virtualDevices) { reader throws(NanoKVMError) in
            VirtualDeviceStatus(network: try reader.bool("network"), disk: try reader.bool("disk"), raw: data)
        }
    }

    /// Flips `device` and returns its new state. The USB gadget restarts (HID input is lost briefly).
    @discardableResult
    public func toggle(_ device: VirtualDevice) async throws(NanoKVMError) -> Bool {
        let data = try await client.call(.toggleVirtualDevice, body: .json(["device": .string(device.rawValue)]))
        return try client.read(data, .toggleVirtualDevice) { reader throws(NanoKVMError) in try reader.bool("on") }
    }

    /// Switches `device` on or off, toggling only when it is not already so. Returns whether
    /// anything changed.
    @discardableResult
    public func set(_ device: VirtualDevice, on: Bool) async throws(NanoKVMError) -> Bool {
        let current = try await status()
        guard current[device] != on else { return false }
        let now = try await toggle(device)
        guard now == on else {
            throw NanoKVMError(
                .api, "the \(device.rawValue) device did not switch \(on ? "on" : "off")", method: "POST",
                path: APIEndpoint.toggleVirtualDevice.path, device: client.device)
        }
        return true
    }
}

extension NanoKVMClient {
    public var virtualDevices: VirtualDevicesAPI { VirtualDevicesAPI(client: self) }
}
