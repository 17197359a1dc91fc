// Key names for `dev:key("ctrl+alt+delete")` (issue 5): `KeyboardEvent.code` values as the web
// UI maps them to HID usages (protocol §8.7), matched case-insensitively, plus short aliases
// (`ctrl`, `win`, `enter`, `esc`, `up`, single letters and digits …). A chord joins names with
// `+`; its parts are pressed in the order written and released in reverse order.

/// One key of a chord: a modifier (a bit of the report's byte 0) or a key (a usage in the slots).
public enum KeyComponent: Sendable, Hashable, CustomStringConvertible {
    /// A modifier bit (`KeyModifier`), never put in a key slot.
    case modifier(UInt8)
    /// A HID Keyboard/Keypad-page usage.
    case key(UInt8)

    /// The usage of the key, or 0xE0…0xE7 for a modifier (what the legacy protocol sends).
    public var usage: UInt8 {
        switch self {
        case .key(let usage): return usage
        case .modifier(let bit):
            for index in 0..<8 where bit == UInt8(1) << UInt8(index) { return 0xE0 + UInt8(index) }
            return 0xE0
        }
    }

    public var description: String { KeyNames.canonicalName(of: self) }
}

/// A chord such as `ctrl+alt+delete`, parsed and checked.
public struct KeyChord: Sendable, Hashable, CustomStringConvertible {
    /// The parts in press order (no duplicates).
    public let components: [KeyComponent]

    public init(components: [KeyComponent]) throws(NanoKVMError) {
        guard !components.isEmpty else { throw NanoKVMError(.usage, "a key chord needs at least one key") }
        var seen = Set<KeyComponent>()
        var unique: [KeyComponent] = []
        for component in components where seen.insert(component).inserted { unique.append(component) }
        self.components = unique
    }

    /// Parses `spec` (`"enter"`, `"ctrl+alt+delete"`, `"shift+F10"`, `"KeyA"`); an unknown name
    /// or an empty part raises `usage`.
    public init(parsing spec: String) throws(NanoKVMError) {
        if let problem = KeyChord.problem(in: spec) { throw NanoKVMError(.usage, problem) }
        var parts: [KeyComponent] = []
        for name in KeyChord.split(spec) {
            if let component = KeyNames.component(named: name) { parts.append(component) }
        }
        try self.init(components: parts)
    }

    /// Why `spec` is not a valid chord, or nil when it is (for checking macro files).
    public static func problem(in spec: String) -> String? {
        let names = split(spec)
        if names.isEmpty { return "empty key spec" }
        for name in names {
            if name.isEmpty { return "empty key name in '\(spec)' (join keys with +, e.g. ctrl+alt+delete)" }
            if KeyNames.component(named: name) == nil {
                return "unknown key '\(name)' in '\(spec)' (use KeyboardEvent.code names such as KeyA, Enter, F5, ArrowUp, or aliases such as ctrl, alt, shift, win, esc, del)"
            }
        }
        return nil
    }

    private static func trimSpaces(_ text: String) -> String {
        var slice = Substring(text)
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }

    static func split(_ spec: String) -> [String] {
        let trimmed = trimSpaces(spec)
        if trimmed.isEmpty { return [] }
        return trimmed.split(separator: "+", omittingEmptySubsequences: false).map { trimSpaces(String($0)) }
    }

    /// The modifier bits of the chord.
    public var modifiers: UInt8 {
        components.reduce(0) { bits, component in
            if case .modifier(let bit) = component { return bits | bit }
            return bits
        }
    }

    /// The non-modifier usages, in press order.
    public var keys: [UInt8] {
        components.compactMap { component in
            if case .key(let usage) = component { return usage }
            return nil
        }
    }

    /// Canonical text, e.g. `ControlLeft+AltLeft+Delete`.
    public var description: String { components.map(\.description).joined(separator: "+") }
}

/// The name tables.
public enum KeyNames {
    /// Every `KeyboardEvent.code` of the web UI's table with its HID usage (§8.7), modifiers
    /// excluded. `BrowserSearch`/`LaunchApp2` share 0xF0; `VolumeMute/Up/Down` are aliases of
    /// the `AudioVolume*` codes.
    public static let codes: [(code: String, usage: UInt8)] = {
        var table: [(String, UInt8)] = []
        for (offset, letter) in "ABCDEFGHIJKLMNOPQRSTUVWXYZ".enumerated() { table.append(("Key\(letter)", UInt8(0x04 + offset))) }
        for digit in 1...9 { table.append(("Digit\(digit)", UInt8(0x1D + digit))) }
        table.append(("Digit0", 0x27))
        for number in 1...12 { table.append(("F\(number)", UInt8(0x39 + number))) }
        for number in 13...24 { table.append(("F\(number)", UInt8(0x68 + number - 13))) }
        for digit in 1...9 { table.append(("Numpad\(digit)", UInt8(0x58 + digit))) }
        table.append(("Numpad0", 0x62))
        for number in 6...9 { table.append(("International\(number)", UInt8(0x8C + number - 6))) }
        for number in 1...9 { table.append(("Lang\(number)", UInt8(0x8F + number))) }
        table += [
            ("Enter", 0x28), ("Escape", 0x29), ("Backspace", 0x2A), ("Tab", 0x2B), ("Space", 0x2C), ("Minus", 0x2D),
            ("Equal", 0x2E), ("BracketLeft", 0x2F), ("BracketRight", 0x30), ("Backslash", 0x31), ("IntlHash", 0x32),
            ("Semicolon", 0x33), ("Quote", 0x34), ("Backquote", 0x35), ("Comma", 0x36), ("Period", 0x37), ("Slash", 0x38),
            ("CapsLock", 0x39), ("PrintScreen", 0x46), ("ScrollLock", 0x47), ("Pause", 0x48), ("Insert", 0x49),
            ("Home", 0x4A), ("PageUp", 0x4B), ("Delete", 0x4C), ("End", 0x4D), ("PageDown", 0x4E), ("ArrowRight", 0x4F),
            ("ArrowLeft", 0x50), ("ArrowDown", 0x51), ("ArrowUp", 0x52), ("NumLock", 0x53), ("NumpadDivide", 0x54),
            ("NumpadMultiply", 0x55), ("NumpadSubtract", 0x56), ("NumpadAdd", 0x57), ("NumpadEnter", 0x58),
            ("NumpadDecimal", 0x63), ("IntlBackslash", 0x64), ("ContextMenu", 0x65), ("Power", 0x66), ("NumpadEqual", 0x67),
            ("Execute", 0x74), ("Help", 0x75), ("Props", 0x76), ("Select", 0x77), ("Stop", 0x78), ("Again", 0x79),
            ("Undo", 0x7A), ("Cut", 0x7B), ("Copy", 0x7C), ("Paste", 0x7D), ("Find", 0x7E), ("AudioVolumeMute", 0x7F),
            ("VolumeMute", 0x7F), ("AudioVolumeUp", 0x80), ("VolumeUp", 0x80), ("AudioVolumeDown", 0x81),
            ("VolumeDown", 0x81), ("LockingCapsLock", 0x82), ("LockingNumLock", 0x83), ("LockingScrollLock", 0x84),
            ("NumpadComma", 0x85), ("NumpadEqual2", 0x86), ("IntlRo", 0x87), ("KanaMode", 0x88), ("IntlYen", 0x89),
            ("Convert", 0x8A), ("NonConvert", 0x8B), ("NumpadParenLeft", 0xB6), ("NumpadParenRight", 0xB7),
            ("NumpadBackspace", 0xBB), ("NumpadMemoryStore", 0xD0), ("NumpadMemoryRecall", 0xD1),
            ("NumpadMemoryClear", 0xD2), ("NumpadMemoryAdd", 0xD3), ("NumpadMemorySubtract", 0xD4),
            ("NumpadClear", 0xD8), ("NumpadClearEntry", 0xD9), ("MediaPlayPause", 0xE8), ("MediaStop", 0xE9),
            ("MediaTrackPrevious", 0xEA), ("MediaTrackNext", 0xEB), ("Eject", 0xEC), ("MediaSelect", 0xED),
            ("LaunchMail", 0xEE), ("LaunchApp1", 0xEF), ("BrowserSearch", 0xF0), ("LaunchApp2", 0xF0),
            ("BrowserHome", 0xF1), ("BrowserBack", 0xF2), ("BrowserForward", 0xF3), ("BrowserStop", 0xF4),
            ("BrowserRefresh", 0xF5), ("BrowserFavorites", 0xF6), ("Sleep", 0xF8), ("Wake", 0xF9),
            ("MediaRewind", 0xFA), ("MediaFastForward", 0xFB),
        ]
        return table
    }()

    /// The modifier codes and their bits.
    public static let modifierCodes: [(code: String, bit: UInt8)] = [
        ("ControlLeft", KeyModifier.leftControl), ("ShiftLeft", KeyModifier.leftShift), ("AltLeft", KeyModifier.leftAlt),
        ("MetaLeft", KeyModifier.leftMeta), ("ControlRight", KeyModifier.rightControl), ("ShiftRight", KeyModifier.rightShift),
        ("AltRight", KeyModifier.rightAlt), ("MetaRight", KeyModifier.rightMeta),
    ]

    /// Short names (lower case) → code.
    public static let aliases: [String: String] = {
        var table: [String: String] = [
            "ctrl": "ControlLeft", "control": "ControlLeft", "lctrl": "ControlLeft", "rctrl": "ControlRight",
            "shift": "ShiftLeft", "lshift": "ShiftLeft", "rshift": "ShiftRight",
            "alt": "AltLeft", "option": "AltLeft", "opt": "AltLeft", "lalt": "AltLeft", "ralt": "AltRight", "altgr": "AltRight",
            "meta": "MetaLeft", "win": "MetaLeft", "windows": "MetaLeft", "super": "MetaLeft", "cmd": "MetaLeft",
            "command": "MetaLeft", "gui": "MetaLeft", "lmeta": "MetaLeft", "rmeta": "MetaRight", "lwin": "MetaLeft",
            "rwin": "MetaRight",
            "enter": "Enter", "return": "Enter", "ret": "Enter", "esc": "Escape", "escape": "Escape",
            "del": "Delete", "delete": "Delete", "bksp": "Backspace", "backspace": "Backspace", "bs": "Backspace",
            "space": "Space", "spacebar": "Space", "tab": "Tab",
            "up": "ArrowUp", "down": "ArrowDown", "left": "ArrowLeft", "right": "ArrowRight",
            "pgup": "PageUp", "pageup": "PageUp", "pgdn": "PageDown", "pagedown": "PageDown", "home": "Home", "end": "End",
            "ins": "Insert", "insert": "Insert", "menu": "ContextMenu", "apps": "ContextMenu",
            "prtsc": "PrintScreen", "printscreen": "PrintScreen", "print": "PrintScreen", "sysrq": "PrintScreen",
            "caps": "CapsLock", "capslock": "CapsLock", "numlock": "NumLock", "scrolllock": "ScrollLock",
            "pause": "Pause", "break": "Pause",
            "minus": "Minus", "equal": "Equal", "equals": "Equal", "comma": "Comma", "period": "Period", "dot": "Period",
            "slash": "Slash", "backslash": "Backslash", "semicolon": "Semicolon", "quote": "Quote",
            "backquote": "Backquote", "grave": "Backquote",
            "mute": "AudioVolumeMute", "volumeup": "AudioVolumeUp", "volumedown": "AudioVolumeDown",
            "-": "Minus", "=": "Equal", "[": "BracketLeft", "]": "BracketRight", "\\": "Backslash", ";": "Semicolon",
            "'": "Quote", "`": "Backquote", ",": "Comma", ".": "Period", "/": "Slash",
        ]
        for letter in "abcdefghijklmnopqrstuvwxyz" { table[String(letter)] = "Key" + String(letter).uppercased() }
        for digit in 0...9 {
            table[String(digit)] = "Digit\(digit)"
            table["kp\(digit)"] = "Numpad\(digit)"
        }
        return table
    }()

    private static let byLowercasedName: [String: KeyComponent] = {
        var table: [String: KeyComponent] = [:]
        for (code, bit) in modifierCodes { table[code.lowercased()] = .modifier(bit) }
        for (code, usage) in codes where table[code.lowercased()] == nil { table[code.lowercased()] = .key(usage) }
        for (alias, code) in aliases where table[alias] == nil {
            if let target = table[code.lowercased()] { table[alias] = target }
        }
        return table
    }()

    private static let canonicalNames: [KeyComponent: String] = {
        var table: [KeyComponent: String] = [:]
        for (code, bit) in modifierCodes { table[.modifier(bit)] = code }
        for (code, usage) in codes where table[.key(usage)] == nil { table[.key(usage)] = code }
        return table
    }()

    /// The component for a code or alias (case-insensitive), nil when unknown.
    public static func component(named name: String) -> KeyComponent? {
        byLowercasedName[name.lowercased()]
    }

    /// The `KeyboardEvent.code` of a component (`Usage0xNN` for usages outside the table).
    public static func canonicalName(of component: KeyComponent) -> String {
        if let name = canonicalNames[component] { return name }
        let usage = component.usage
        let digits = Array("0123456789ABCDEF")
        return "Usage0x" + String([digits[Int(usage >> 4)], digits[Int(usage & 15)]])
    }

    /// The highest key usage the keyboard gadget accepts: 0xE7 on the binary-protocol
    /// firmware (2.3.2+, normal mode), 0x65 on older descriptors. Usages above are ignored
    /// by hosts (media/browser keys ≥ 0xE8 are consumer-page keys this device lacks).
    public static func highestUsage(for generation: FirmwareGeneration) -> UInt8 {
        generation == .current ? 0xE7 : 0x65
    }
}
