/// What a key press on the local terminal means for the target.
enum TerminalKeyEvent: Equatable, Sendable {
    /// A printable character: typed with the layout, as `dev:type` would.
    case text(String)
    /// A chord in `dev:key` syntax (`ctrl+KeyC`, `ArrowUp`, `alt+KeyX`, `shift+F10`).
    case chord(String)
    /// The key combination that leaves live mode.
    case leave
}

/// Turns the bytes a terminal in raw mode sends into key events: UTF-8 text, control
/// characters (Ctrl-A … Ctrl-Z, Enter, Tab, Backspace, Escape), and the escape sequences of
/// xterm-compatible terminals for arrows, Home/End, Insert/Delete, Page Up/Down and F1–F12,
/// with their Shift/Alt/Ctrl modifier parameters; ESC followed by a key is Alt+key.
///
/// A lone ESC is ambiguous (Escape or the start of a sequence): `flushPendingEscape()` turns
/// it into Escape when no more bytes arrive shortly after.
struct TerminalKeyDecoder {
    /// Ctrl-] leaves (as in telnet): a combination that no common program needs.
    static let leaveByte: UInt8 = 0x1D

    private var buffer: [UInt8] = []

    /// Whether a lone ESC is waiting for what follows.
    var hasPendingEscape: Bool { buffer == [0x1B] }

    mutating func feed(_ bytes: [UInt8]) -> [TerminalKeyEvent] {
        buffer += bytes
        var events: [TerminalKeyEvent] = []
        while let (event, used) = decodeOne(buffer) {
            buffer.removeFirst(used)
            if let event { events.append(event) }
        }
        return events
    }

    mutating func flushPendingEscape() -> [TerminalKeyEvent] {
        guard !buffer.isEmpty else { return [] }
        var events: [TerminalKeyEvent] = []
        if buffer.first == 0x1B {
            events.append(.chord("Escape"))
            buffer.removeFirst()
        }
        events += feed([])
        // Whatever is left is an incomplete sequence that will never complete: drop it.
        buffer.removeAll()
        return events
    }

    /// Decodes one event at the start of `bytes`: (event or nil for ignored input, bytes used),
    /// or nil when more bytes are needed.
    private func decodeOne(_ bytes: [UInt8]) -> (TerminalKeyEvent?, Int)? {
        guard let first = bytes.first else { return nil }
        switch first {
        case Self.leaveByte: return (.leave, 1)
        case 0x1B: return decodeEscape(bytes)
        case 0x0D, 0x0A: return (.chord("Enter"), 1)
        case 0x09: return (.chord("Tab"), 1)
        case 0x7F, 0x08: return (.chord("Backspace"), 1)
        case 0x00: return (.chord("ctrl+Space"), 1)
        case 0x01...0x1A: return (.chord("ctrl+Key" + String(UnicodeScalar(first + 0x40))), 1)
        case 0x1C...0x1F: return (nil, 1)  // Ctrl-\ … Ctrl-_ have no portable meaning
        default:
            let length = utf8Length(first)
            guard length > 0 else { return (nil, 1) }
            guard bytes.count >= length else { return nil }
            guard let text = String(validating: bytes[0..<length], as: UTF8.self) else { return (nil, 1) }
            return (.text(text), length)
        }
    }

    private func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0x20..<0x80: return 1
        case 0xC2..<0xE0: return 2
        case 0xE0..<0xF0: return 3
        case 0xF0..<0xF5: return 4
        default: return 0
        }
    }

    private func decodeEscape(_ bytes: [UInt8]) -> (TerminalKeyEvent?, Int)? {
        guard bytes.count >= 2 else { return nil }
        let second = bytes[1]
        if second == UInt8(ascii: "[") { return decodeCSI(bytes) }
        if second == UInt8(ascii: "O") {
            guard bytes.count >= 3 else { return nil }
            let names: [UInt8: String] = [
                UInt8(ascii: "P"): "F1", UInt8(ascii: "Q"): "F2", UInt8(ascii: "R"): "F3", UInt8(ascii: "S"): "F4",
                UInt8(ascii: "A"): "ArrowUp", UInt8(ascii: "B"): "ArrowDown", UInt8(ascii: "C"): "ArrowRight",
                UInt8(ascii: "D"): "ArrowLeft", UInt8(ascii: "H"): "Home", UInt8(ascii: "F"): "End",
            ]
            return (names[bytes[2]].map { .chord($0) }, 3)
        }
        if second == 0x1B { return (.chord("Escape"), 1) }
        // ESC + key: Alt+key.
        guard let (inner, used) = decodeOne(Array(bytes.dropFirst())) else { return nil }
        switch inner {
        case .text(let text)?:
            if let chord = Self.chord(forCharacter: text) { return (.chord("alt+" + chord), 1 + used) }
            return (.text(text), 1 + used)
        case .chord(let chord)?: return (.chord("alt+" + chord), 1 + used)
        default: return (inner, 1 + used)
        }
    }

    /// `ESC [ params final`: params are digits and `;`.
    private func decodeCSI(_ bytes: [UInt8]) -> (TerminalKeyEvent?, Int)? {
        var index = 2
        while index < bytes.count, (0x30...0x3F).contains(bytes[index]) { index += 1 }
        guard index < bytes.count else { return bytes.count > 16 ? (nil, bytes.count) : nil }
        let final = bytes[index]
        let parameters = String(decoding: bytes[2..<index], as: UTF8.self).split(separator: ";").map { Int($0) ?? 0 }
        let used = index + 1
        var name: String?
        switch final {
        case UInt8(ascii: "A"): name = "ArrowUp"
        case UInt8(ascii: "B"): name = "ArrowDown"
        case UInt8(ascii: "C"): name = "ArrowRight"
        case UInt8(ascii: "D"): name = "ArrowLeft"
        case UInt8(ascii: "H"): name = "Home"
        case UInt8(ascii: "F"): name = "End"
        case UInt8(ascii: "P"): name = "F1"
        case UInt8(ascii: "Q"): name = "F2"
        case UInt8(ascii: "R"): name = "F3"
        case UInt8(ascii: "S"): name = "F4"
        case UInt8(ascii: "Z"): return (.chord("shift+Tab"), used)
        case UInt8(ascii: "~"):
            let tilde: [Int: String] = [
                1: "Home", 2: "Insert", 3: "Delete", 4: "End", 5: "PageUp", 6: "PageDown", 7: "Home", 8: "End",
                11: "F1", 12: "F2", 13: "F3", 14: "F4", 15: "F5", 17: "F6", 18: "F7", 19: "F8", 20: "F9", 21: "F10",
                23: "F11", 24: "F12",
            ]
            name = parameters.first.flatMap { tilde[$0] }
        default:
            name = nil
        }
        guard let name else { return (nil, used) }
        // xterm modifier parameter: 1 + (shift 1, alt 2, ctrl 4, meta 8).
        var modifiers: [String] = []
        if parameters.count >= 2, parameters[1] > 1 {
            let bits = parameters[1] - 1
            if bits & 4 != 0 { modifiers.append("ctrl") }
            if bits & 2 != 0 { modifiers.append("alt") }
            if bits & 1 != 0 { modifiers.append("shift") }
            if bits & 8 != 0 { modifiers.append("meta") }
        }
        return (.chord((modifiers + [name]).joined(separator: "+")), used)
    }

    /// The US key of a character for Alt combinations (`alt+KeyX`), else nil.
    static func chord(forCharacter text: String) -> String? {
        guard text.count == 1, let scalar = text.unicodeScalars.first, scalar.isASCII else { return nil }
        let c = Character(scalar)
        if c.isLetter { return (c.isUppercase ? "shift+Key" : "Key") + String(c).uppercased() }
        if c.isNumber { return "Digit" + String(c) }
        return nil
    }
}
