// ATX power/reset buttons and the power/HDD LEDs (protocol §6.2.2).

/// The front-panel buttons wired to the NanoKVM's ATX header.
public enum ATXButton: String, Sendable, CaseIterable {
    case power
    case reset
}

/// LED inputs of the ATX header.
public struct ATXLEDs: Sendable, Equatable {
    /// The host's power LED is lit.
    public var power: Bool
    /// The HDD LED (only wired on Alpha hardware; always false elsewhere).
    public var hdd: Bool

    public init(power: Bool, hdd: Bool) {
        self.power = power
        self.hdd = hdd
    }
}

public struct GPIOAPI: Sendable {
    let client: NanoKVMClient

    /// The UI's short press (power on, ACPI shutdown request, reset).
    public static let shortPress = 800
    /// The UI's long press (forced power off).
    public static let longPress = 8000

    /// Presses `button` for `milliseconds` and returns after the device released it (the
    /// device answers only then, so the timeout grows with the press).
    public func press(_ button: ATXButton, milliseconds: Int = GPIOAPI.shortPress) async throws(NanoKVMError) {
        guard milliseconds > 0, milliseconds <= 600_000 else {
            throw NanoKVMError(
                .usage, "press duration must be 1–600000 ms, got \(milliseconds)", method: "POST", path: APIEndpoint.gpioPress.path,
                device: client.device)
        }
        let body: JSONValue = ["type": .string(button.rawValue), "duration": .integer(Int64(milliseconds))]
        try await client.call(.gpioPress, body: .json(body), timeout: client.timeout + .milliseconds(milliseconds))
    }

    /// Reads the power and HDD LEDs (`/api/vm/gpio/led` on 2.0.x).
    public func leds() async throws(NanoKVMError) -> ATXLEDs {
        let endpoint: APIEndpoint = client.profile.isClosedSourceGeneration ? .gpioLEDsLegacy : .gpioLEDs
        let data = try await client.call(endpoint)
        return try client.read(data, endpoint) { reader throws(NanoKVMError) in
            ATXLEDs(power: try reader.bool("pwr"), hdd: try reader.optionalBool("hdd") ?? false)
        }
    }
}

extension NanoKVMClient {
    public var gpio: GPIOAPI { GPIOAPI(client: self) }
}
