// Raw HID reports and their two wire encodings on `/api/ws` (protocol §8.2, §8.6):
// binary frames (`01`+8 keyboard, `02`+4/6 mouse, `00` heartbeat) from 2.3.2, and the
// legacy JSON arrays of 2.0.x–2.3.1. Key names and layouts are not this file's business.

/// An 8-byte USB boot-keyboard report.
public struct KeyboardReport: Sendable, Equatable {
    /// Modifier bits (`KeyModifier`).
    public var modifiers: UInt8
    /// Up to six pressed key usages in press order (zeros are dropped).
    public var keys: [UInt8]

    public init(modifiers: UInt8 = 0, keys: [UInt8] = []) {
        self.modifiers = modifiers
        self.keys = Array(keys.filter { $0 != 0 }.prefix(6))
    }

    /// All keys up.
    public static let released = KeyboardReport()

    /// The 8 report bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = [modifiers, 0, 0, 0, 0, 0, 0, 0]
        for (slot, key) in keys.prefix(6).enumerated() { out[2 + slot] = key }
        return out
    }
}

/// A 4-byte relative mouse report.
public struct RelativeMouseReport: Sendable, Equatable {
    /// Bit 0 left, 1 right, 2 middle.
    public var buttons: UInt8
    public var dx: Int8
    public var dy: Int8
    /// Positive scrolls up (away from the user).
    public var wheel: Int8

    public init(buttons: UInt8 = 0, dx: Int8 = 0, dy: Int8 = 0, wheel: Int8 = 0) {
        self.buttons = buttons
        self.dx = dx
        self.dy = dy
        self.wheel = wheel
    }

    public var bytes: [UInt8] { [buttons, UInt8(bitPattern: dx), UInt8(bitPattern: dy), UInt8(bitPattern: wheel)] }
}

/// A 6-byte absolute mouse report; coordinates 0…32767 across the host screen.
public struct AbsoluteMouseReport: Sendable, Equatable {
    /// Bit 0 left, 1 right, 2 middle, 3 back, 4 forward.
    public var buttons: UInt8
    public var x: UInt16
    public var y: UInt16
    public var wheel: Int8

    public init(buttons: UInt8 = 0, x: UInt16, y: UInt16, wheel: Int8 = 0) {
        self.buttons = buttons
        self.x = min(x, 32767)
        self.y = min(y, 32767)
        self.wheel = wheel
    }

    /// From fractions 0…1 of the screen (`round(f·32767)`, clamped).
    public init(buttons: UInt8 = 0, fractionX: Double, fractionY: Double, wheel: Int8 = 0) {
        func scale(_ f: Double) -> UInt16 {
            guard f.isFinite else { return 0 }
            return UInt16(max(0, min(32767, (f * 32767).rounded())))
        }
        self.init(buttons: buttons, x: scale(fractionX), y: scale(fractionY), wheel: wheel)
    }

    public var bytes: [UInt8] {
        [buttons, UInt8(x & 0xFF), UInt8(x >> 8), UInt8(y & 0xFF), UInt8(y >> 8), UInt8(bitPattern: wheel)]
    }
}

/// Mouse events of the legacy JSON protocol (§8.6).
public enum LegacyMouseEvent: Int, Sendable {
    case buttonUp = 0
    case buttonDown = 1
    case absoluteMove = 2
    case relativeMove = 3
    case scroll = 4
}

/// A legacy JSON message, sent verbatim. Always full length: a short array crashes ≤2.3.1.
public enum LegacyHIDMessage: Sendable, Equatable {
    case heartbeat
    /// `[1, usage, ctrl, shift, alt, meta]`; the fields' meaning depends on the firmware
    /// (`LegacyModifierEncoding`).
    case keyboard(usage: UInt8, ctrl: Int, shift: Int, alt: Int, meta: Int)
    /// `[2, event, button, x, y]`.
    case mouse(event: LegacyMouseEvent, button: Int, x: Int, y: Int)

    public var array: [Int] {
        switch self {
        case .heartbeat: return [0]
        case let .keyboard(usage, ctrl, shift, alt, meta): return [1, Int(usage), ctrl, shift, alt, meta]
        case let .mouse(event, button, x, y): return [2, event.rawValue, button, x, y]
        }
    }

    /// The text frame.
    public var text: String { "[" + array.map(String.init).joined(separator: ",") + "]" }
}

/// What a HIDSession sends.
public enum HIDMessage: Sendable, Equatable {
    case heartbeat
    case keyboard(KeyboardReport)
    case relativeMouse(RelativeMouseReport)
    case absoluteMouse(AbsoluteMouseReport)
    /// A legacy JSON message as is (legacy generation only).
    case legacy(LegacyHIDMessage)
}

/// One frame on the wire.
public enum HIDWireFrame: Sendable, Equatable {
    case binary([UInt8])
    case text(String)
}

/// The binary encoding (2.3.2+).
public enum HIDBinaryEncoding {
    /// nil for `.legacy` messages, which have no binary form.
    public static func encode(_ message: HIDMessage) -> [UInt8]? {
        switch message {
        case .heartbeat: return [0x00]
        case .keyboard(let report): return [0x01] + report.bytes
        case .relativeMouse(let report): return [0x02] + report.bytes
        case .absoluteMouse(let report): return [0x02] + report.bytes
        case .legacy: return nil
        }
    }
}

/// Turns reports into legacy JSON messages. Stateful: the legacy mouse protocol has button
/// events, so the previous button state decides what a report means.
public struct LegacyHIDEncoder: Sendable {
    /// How keyboard modifiers are written (from the firmware version).
    public var modifierEncoding: LegacyModifierEncoding
    /// 2.1.3+: mouse buttons as bit values 1/2/4; before: 1 left, 2 right, 3 middle.
    public var buttonBitValues: Bool
    /// 2.3.1 flipped the meaning of the scroll `y` field (§8.6).
    public var scrollSignFlipped: Bool
    private var lastButtons: UInt8 = 0

    public init(modifierEncoding: LegacyModifierEncoding, buttonBitValues: Bool, scrollSignFlipped: Bool) {
        self.modifierEncoding = modifierEncoding
        self.buttonBitValues = buttonBitValues
        self.scrollSignFlipped = scrollSignFlipped
    }

    public init(profile: FirmwareProfile) {
        self.init(
            modifierEncoding: profile.legacyModifierEncoding, buttonBitValues: profile.atLeast(2, 1, 3),
            scrollSignFlipped: profile.atLeast(2, 3, 1))
    }

    /// The messages expressing `message`. A keyboard report carries only one key on this
    /// protocol: the most recently pressed one, or a modifier's own usage when only modifiers
    /// are held (as the legacy UI did).
    public mutating func encode(_ message: HIDMessage) -> [LegacyHIDMessage] {
        switch message {
        case .heartbeat:
            return [.heartbeat]
        case .legacy(let raw):
            return [raw]
        case .keyboard(let report):
            return [keyboard(report)]
        case .relativeMouse(let report):
            var out = buttonMessages(report.buttons)
            if report.dx != 0 || report.dy != 0 {
                out.append(.mouse(event: .relativeMove, button: Int(report.buttons), x: Int(report.dx), y: Int(report.dy)))
            }
            if report.wheel != 0 { out.append(scroll(report.wheel)) }
            return out
        case .absoluteMouse(let report):
            // Move first so a click lands where the report says.
            var out: [LegacyHIDMessage] = [.mouse(event: .absoluteMove, button: 0, x: Int(report.x), y: Int(report.y))]
            out.append(contentsOf: buttonMessages(report.buttons))
            if report.wheel != 0 { out.append(scroll(report.wheel)) }
            return out
        }
    }

    func keyboard(_ report: KeyboardReport) -> LegacyHIDMessage {
        let m = report.modifiers
        var usage = report.keys.last ?? 0
        if usage == 0 && m != 0 {
            // The server writes an all-zero report for usage 0, whatever the modifier fields say.
            for bit in 0..<8 where m & (1 << bit) != 0 {
                usage = 0xE0 + UInt8(bit)
                break
            }
        }
        switch modifierEncoding {
        case .flags:
            let alt = m & 0x04 != 0 ? 1 : (m & 0x40 != 0 ? 2 : 0)
            return .keyboard(
                usage: usage, ctrl: m & 0x11 != 0 ? 1 : 0, shift: m & 0x22 != 0 ? 1 : 0, alt: alt, meta: m & 0x88 != 0 ? 1 : 0)
        case .bitValues:
            return .keyboard(usage: usage, ctrl: Int(m & 0x11), shift: Int(m & 0x22), alt: Int(m & 0x44), meta: Int(m & 0x88))
        }
    }

    mutating func buttonMessages(_ buttons: UInt8) -> [LegacyHIDMessage] {
        let buttons = buttons & 0x07  // the legacy relative device has three buttons
        defer { lastButtons = buttons }
        guard buttons != lastButtons else { return [] }
        if buttons == 0 { return [.mouse(event: .buttonUp, button: 0, x: 0, y: 0)] }
        // A button-down event can name one button only: the newly pressed one (lowest bit).
        let pressed = buttons & ~lastButtons
        let bit = pressed != 0 ? pressed & (~pressed &+ 1) : buttons & (~buttons &+ 1)
        let value: Int
        if buttonBitValues {
            value = Int(bit)
        } else {
            value = bit == 0x01 ? 1 : (bit == 0x02 ? 2 : 3)
        }
        if pressed == 0 {
            // Some buttons were released but others stay held: release all, press the rest.
            return [.mouse(event: .buttonUp, button: 0, x: 0, y: 0), .mouse(event: .buttonDown, button: value, x: 0, y: 0)]
        }
        return [.mouse(event: .buttonDown, button: value, x: 0, y: 0)]
    }

    func scroll(_ wheel: Int8) -> LegacyHIDMessage {
        // Report wheel > 0 = up. ≤2.3.0 writes −1 for y > 0; 2.3.1 writes −1 for y < 0.
        let up = wheel > 0
        let y = scrollSignFlipped ? (up ? 1 : -1) : (up ? -1 : 1)
        return .mouse(event: .scroll, button: 0, x: 0, y: y)
    }
}
