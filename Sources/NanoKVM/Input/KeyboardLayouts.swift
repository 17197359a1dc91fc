// Host keyboard layouts: which USB HID key (usage on the Keyboard/Keypad page 0x07) and which
// modifier bits type a character on a host whose operating system uses that layout. Shared by
// the client (`dev:type` turns text into reports) and the simulator (its virtual host turns
// reports back into text), so both sides always agree. The NanoKVM's own paste tables
// (protocol §6.3.1) are a different thing: they belong to the device and live in the simulator.

/// One key press: a HID usage plus the modifier byte of the keyboard report, and on layouts
/// whose level 3 is an ordinary key (neo's Mod3 on CapsLock and `#`, not AltGr) that key,
/// held down around the press.
public struct KeyStroke: Sendable, Hashable, CustomStringConvertible {
    public var usage: UInt8
    public var modifiers: UInt8
    /// A key (not a modifier bit) pressed before `usage` and released with it, nil for none.
    public var heldUsage: UInt8?

    public init(usage: UInt8, modifiers: UInt8 = 0, heldUsage: UInt8? = nil) {
        self.usage = usage
        self.modifiers = modifiers
        self.heldUsage = heldUsage
    }

    public var description: String {
        "usage 0x\(Self.hex(usage)) modifiers 0x\(Self.hex(modifiers))" + (heldUsage.map { " holding usage 0x\(Self.hex($0))" } ?? "")
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}

/// Modifier bits of byte 0 of a boot-keyboard report.
public enum KeyModifier {
    public static let leftControl: UInt8 = 0x01
    public static let leftShift: UInt8 = 0x02
    public static let leftAlt: UInt8 = 0x04
    public static let leftMeta: UInt8 = 0x08
    public static let rightControl: UInt8 = 0x10
    public static let rightShift: UInt8 = 0x20
    public static let rightAlt: UInt8 = 0x40
    public static let rightMeta: UInt8 = 0x80
    public static let anyShift: UInt8 = leftShift | rightShift
    public static let anyControl: UInt8 = leftControl | rightControl
    public static let anyAlt: UInt8 = leftAlt | rightAlt
    public static let anyMeta: UInt8 = leftMeta | rightMeta
}

/// A host keyboard layout: character → key stroke, and the reverse for reading reports.
///
/// Dead keys (de `^`, `´`, `` ` ``; fr `^`, `¨`) type nothing by themselves: the host waits for the next
/// key and composes (`^` then `e` gives `ê`), or prints the accent itself when Space follows.
/// `keystrokes(for:)` gives the whole sequence for a character, `text(usage:…pending:)` is the
/// host side of it.
public struct KeyboardLayout: Sendable {
    /// Short name: `us`, `uk`, `de`, `fr` for the built-in tables, the XKB name (`ch(fr)`,
    /// `gb`) for a layout compiled by libxkbcommon.
    public let name: String
    /// The XKB layout and variant this table was built from; nil for the built-in tables.
    public let xkbName: XKBLayoutName?
    /// Characters typed as a dead key followed by a base key (or Space), from the host's
    /// compose data (XKB layouts; the built-in tables use `compositions`).
    public let sequences: [Character: [KeyStroke]]
    /// Every character the layout types with one key stroke, with that stroke (Shift is 0x02,
    /// AltGr is Right Alt 0x40). Characters that need a dead key are not in it.
    public let strokes: [Character: KeyStroke]
    /// Dead keys: the stroke and the accent it stands for (its spacing form, e.g. `^`).
    public let deadKeys: [KeyStroke: Character]
    /// Level of (usage) → characters for [plain, shift, altgr, shift+altgr].
    private let levels: [UInt8: [Character?]]
    /// The same for dead keys.
    private let deadLevels: [UInt8: [Character?]]
    /// Deterministic order of the dead keys (for choosing one when several could compose).
    private let deadKeyOrder: [(stroke: KeyStroke, accent: Character)]

    public init(name: String, strokes: [Character: KeyStroke], deadKeys: [KeyStroke: Character] = [:]) {
        self.init(name: name, xkbName: nil, strokes: strokes, deadKeys: deadKeys, sequences: [:])
    }

    init(
        name: String, xkbName: XKBLayoutName?, strokes: [Character: KeyStroke], deadKeys: [KeyStroke: Character],
        sequences: [Character: [KeyStroke]]
    ) {
        self.name = name
        self.xkbName = xkbName
        self.sequences = sequences
        self.strokes = strokes
        self.deadKeys = deadKeys
        var levels: [UInt8: [Character?]] = [:]
        // Deterministic: sort so that the same layout always builds the same reverse table.
        for (character, stroke) in strokes.sorted(by: { $0.key < $1.key }) {
            let level = Self.level(of: stroke)
            var slots = levels[stroke.usage] ?? [nil, nil, nil, nil]
            if slots[level] == nil { slots[level] = character }
            levels[stroke.usage] = slots
        }
        self.levels = levels
        var deadLevels: [UInt8: [Character?]] = [:]
        let order = deadKeys.sorted { ($0.key.usage, $0.key.modifiers) < ($1.key.usage, $1.key.modifiers) }
        for (stroke, accent) in order {
            var slots = deadLevels[stroke.usage] ?? [nil, nil, nil, nil]
            slots[Self.level(of: stroke)] = accent
            deadLevels[stroke.usage] = slots
        }
        self.deadLevels = deadLevels
        self.deadKeyOrder = order.map { (stroke: $0.key, accent: $0.value) }
    }

    /// The stroke that types `character` by itself, or nil when this layout cannot type it with
    /// one stroke (see `keystrokes(for:)` for characters that need a dead key).
    public func stroke(for character: Character) -> KeyStroke? { strokes[character] }

    /// The strokes that type `character`: one stroke, or a dead key followed by the base
    /// character (`ê` = `^`, `e`) or by Space (the accent itself). `\r` and `\r\n` type Enter.
    /// Nil when the layout cannot type it.
    public func keystrokes(for character: Character) -> [KeyStroke]? {
        if let stroke = strokes[character] { return [stroke] }
        if character == "\r" || character == "\r\n", let enter = strokes["\n"] { return [enter] }
        if xkbName != nil { return sequences[character] }
        for (dead, accent) in deadKeyOrder where accent == character {
            if let space = strokes[" "] { return [dead, space] }
        }
        for (dead, accent) in deadKeyOrder {
            guard let bases = Self.compositions[accent] else { continue }
            for (base, composed) in bases.sorted(by: { $0.key < $1.key }) where composed == character {
                if let stroke = strokes[base] { return [dead, stroke] }
            }
        }
        return nil
    }

    /// The character a host with this layout produces for `usage` pressed with `modifiers`
    /// (Control, Alt and Meta combinations produce no character; Caps Lock shifts letters).
    /// Stateless: a dead key gives its accent (use `text(usage:modifiers:capsLock:pending:)`
    /// to compose like a host does).
    public func character(usage: UInt8, modifiers: UInt8, capsLock: Bool = false) -> Character? {
        guard let (slot, _) = lookup(usage: usage, modifiers: modifiers, capsLock: capsLock) else { return nil }
        return slot
    }

    /// What a host types for one key press, composing with a pending dead key: "" when the
    /// key is a dead key (it becomes pending) or produces nothing, the composed character, the
    /// accent alone (dead key then Space), or the accent followed by the character when they
    /// do not compose. Keys that produce no character leave a pending dead key pending.
    public func text(usage: UInt8, modifiers: UInt8, capsLock: Bool = false, pending: inout DeadKeyState) -> String {
        guard let (character, isDead) = lookup(usage: usage, modifiers: modifiers, capsLock: capsLock) else { return "" }
        if isDead {
            if let accent = pending.accent {
                pending.accent = nil
                return String(accent) + String(character)
            }
            pending.accent = character
            return ""
        }
        guard let accent = pending.accent else { return String(character) }
        pending.accent = nil
        if character == " " { return String(accent) }
        if let composed = Self.compositions[accent]?[character] { return String(composed) }
        return String(accent) + String(character)
    }

    /// The dead key waiting for the next key on a host.
    public struct DeadKeyState: Sendable, Equatable {
        /// The accent of the pending dead key, nil when none.
        public var accent: Character?
        public init(accent: Character? = nil) { self.accent = accent }
    }

    private func lookup(usage: UInt8, modifiers: UInt8, capsLock: Bool) -> (Character, Bool)? {
        let altGr = modifiers & KeyModifier.rightAlt != 0
            || (modifiers & KeyModifier.anyControl != 0 && modifiers & KeyModifier.leftAlt != 0)
        if !altGr, modifiers & (KeyModifier.anyControl | KeyModifier.anyAlt | KeyModifier.anyMeta) != 0 {
            return nil
        }
        var shifted = modifiers & KeyModifier.anyShift != 0
        if capsLock, let plain = levels[usage]?[0], plain.isLetter { shifted.toggle() }
        let level = (shifted ? 1 : 0) + (altGr ? 2 : 0)
        if let dead = deadLevels[usage]?[level] { return (dead, true) }
        guard let character = levels[usage]?[level] else { return nil }
        return (character, false)
    }

    /// Accent (spacing form) → base → composed character, for the dead keys of the layouts.
    public static let compositions: [Character: [Character: Character]] = {
        func table(_ pairs: String, _ composed: String) -> [Character: Character] {
            Dictionary(uniqueKeysWithValues: zip(pairs, composed))
        }
        return [
            "^": table("aeiouAEIOU", "âêîôûÂÊÎÔÛ"),
            "´": table("aeiouyAEIOUY", "áéíóúýÁÉÍÓÚÝ"),
            "`": table("aeiouAEIOU", "àèìòùÀÈÌÒÙ"),
            "¨": table("aeiouyAEIOUY", "äëïöüÿÄËÏÖÜŸ"),
        ]
    }()

    /// 0 plain, 1 Shift, 2 level 3 (AltGr, or the held level-3 key), 3 Shift + level 3.
    static func level(of stroke: KeyStroke) -> Int {
        (stroke.modifiers & KeyModifier.anyShift != 0 ? 1 : 0)
            + (stroke.modifiers & KeyModifier.rightAlt != 0 || stroke.heldUsage != nil ? 2 : 0)
    }

    /// The layout called `name`, nil when there is none (see `resolve(_:)` for why).
    public static func named(_ name: String) -> KeyboardLayout? { try? resolve(name) }

    /// The layout called `name`: an XKB `layout` or `layout(variant)` compiled by libxkbcommon
    /// (`ch(fr)`, `gb`, `de(nodeadkeys)`), once per process. The short names of the built-in
    /// tables are aliases (case-insensitive): `us` (`en`, `en-us`), `uk` (`gb`, `en-gb`) = XKB
    /// `gb`, `de` (`de-de`), `fr` (`fr-fr`); without libxkbcommon they are the built-in tables
    /// and any other name raises `usage` naming the Debian packages to install.
    public static func resolve(_ name: String) throws(NanoKVMError) -> KeyboardLayout {
        let builtin: KeyboardLayout?
        let xkbName: XKBLayoutName?
        switch name.lowercased() {
        case "us", "en", "en-us": (builtin, xkbName) = (.us, XKBLayoutName(layout: "us"))
        case "uk", "gb", "en-gb": (builtin, xkbName) = (.uk, XKBLayoutName(layout: "gb"))
        case "de", "de-de": (builtin, xkbName) = (.de, XKBLayoutName(layout: "de"))
        case "fr", "fr-fr": (builtin, xkbName) = (.fr, XKBLayoutName(layout: "fr"))
        default: (builtin, xkbName) = (nil, XKBLayoutName(parsing: name))
        }
        guard let xkbName else {
            throw NanoKVMError(.usage, "unknown keyboard layout '\(name)' (an XKB name such as us, gb, de, ch(fr), de(nodeadkeys); kvm.layouts() lists them)")
        }
        if let builtin, XKBEngine.loadError != nil { return builtin }
        return try XKBEngine.layout(xkbName)
    }

    public static let all: [KeyboardLayout] = [.us, .uk, .de, .fr]

    // MARK: - Tables

    private static let shift = KeyModifier.leftShift
    private static let altGr = KeyModifier.rightAlt

    /// Characters common to the Latin layouts below before their differences are applied.
    private static func baseTable() -> [Character: KeyStroke] {
        var table: [Character: KeyStroke] = [:]
        for (offset, scalar) in "abcdefghijklmnopqrstuvwxyz".unicodeScalars.enumerated() {
            let usage = UInt8(0x04 + offset)
            table[Character(scalar)] = KeyStroke(usage: usage)
            table[Character(String(scalar).uppercased())] = KeyStroke(usage: usage, modifiers: shift)
        }
        for (offset, character) in "1234567890".enumerated() {
            table[character] = KeyStroke(usage: UInt8(0x1E + offset))
        }
        table["\n"] = KeyStroke(usage: 0x28)
        table["\t"] = KeyStroke(usage: 0x2B)
        table[" "] = KeyStroke(usage: 0x2C)
        return table
    }

    /// US QWERTY.
    public static let us: KeyboardLayout = {
        var t = baseTable()
        let plain: [(Character, UInt8)] = [
            ("-", 0x2D), ("=", 0x2E), ("[", 0x2F), ("]", 0x30), ("\\", 0x31), (";", 0x33), ("'", 0x34),
            ("`", 0x35), (",", 0x36), (".", 0x37), ("/", 0x38),
        ]
        let shifted: [(Character, UInt8)] = [
            ("!", 0x1E), ("@", 0x1F), ("#", 0x20), ("$", 0x21), ("%", 0x22), ("^", 0x23), ("&", 0x24),
            ("*", 0x25), ("(", 0x26), (")", 0x27), ("_", 0x2D), ("+", 0x2E), ("{", 0x2F), ("}", 0x30),
            ("|", 0x31), (":", 0x33), ("\"", 0x34), ("~", 0x35), ("<", 0x36), (">", 0x37), ("?", 0x38),
        ]
        for (c, u) in plain { t[c] = KeyStroke(usage: u) }
        for (c, u) in shifted { t[c] = KeyStroke(usage: u, modifiers: shift) }
        return KeyboardLayout(name: "us", strokes: t)
    }()

    /// UK QWERTY (ISO): `"` and `@` swapped, `£` on Shift+3, `#`/`~` on the ISO hash key,
    /// `\`/`|` on the extra ISO key left of Z, `¬` on Shift+`, `€` on AltGr+4.
    public static let uk: KeyboardLayout = {
        var t = us.strokes
        t["\""] = KeyStroke(usage: 0x1F, modifiers: shift)
        t["@"] = KeyStroke(usage: 0x34, modifiers: shift)
        t["£"] = KeyStroke(usage: 0x20, modifiers: shift)
        t["#"] = KeyStroke(usage: 0x32)
        t["~"] = KeyStroke(usage: 0x32, modifiers: shift)
        t["\\"] = KeyStroke(usage: 0x64)
        t["|"] = KeyStroke(usage: 0x64, modifiers: shift)
        t["¬"] = KeyStroke(usage: 0x35, modifiers: shift)
        t["€"] = KeyStroke(usage: 0x21, modifiers: altGr)
        return KeyboardLayout(name: "uk", strokes: t)
    }()

    /// German QWERTZ. `^`, `´` and `` ` `` are dead keys (`^` then Space types `^`, `´` then
    /// `e` types `é`).
    public static let de: KeyboardLayout = {
        var t = baseTable()
        t["y"] = KeyStroke(usage: 0x1D); t["Y"] = KeyStroke(usage: 0x1D, modifiers: shift)
        t["z"] = KeyStroke(usage: 0x1C); t["Z"] = KeyStroke(usage: 0x1C, modifiers: shift)
        let entries: [(Character, UInt8, UInt8)] = [
            ("ä", 0x34, 0), ("Ä", 0x34, shift), ("ö", 0x33, 0), ("Ö", 0x33, shift), ("ü", 0x2F, 0),
            ("Ü", 0x2F, shift), ("ß", 0x2D, 0), ("?", 0x2D, shift), ("\\", 0x2D, altGr),
            ("°", 0x35, shift),
            ("!", 0x1E, shift), ("\"", 0x1F, shift), ("²", 0x1F, altGr), ("§", 0x20, shift), ("³", 0x20, altGr),
            ("$", 0x21, shift), ("%", 0x22, shift), ("&", 0x23, shift), ("/", 0x24, shift), ("{", 0x24, altGr),
            ("(", 0x25, shift), ("[", 0x25, altGr), (")", 0x26, shift), ("]", 0x26, altGr), ("=", 0x27, shift),
            ("}", 0x27, altGr), ("+", 0x30, 0), ("*", 0x30, shift), ("~", 0x30, altGr), ("#", 0x32, 0),
            ("'", 0x32, shift), ("<", 0x64, 0), (">", 0x64, shift), ("|", 0x64, altGr), (",", 0x36, 0),
            (";", 0x36, shift), (".", 0x37, 0), (":", 0x37, shift), ("-", 0x38, 0), ("_", 0x38, shift),
            ("@", 0x14, altGr), ("€", 0x08, altGr), ("µ", 0x10, altGr),
        ]
        for (c, u, m) in entries { t[c] = KeyStroke(usage: u, modifiers: m) }
        let dead: [KeyStroke: Character] = [
            KeyStroke(usage: 0x35): "^", KeyStroke(usage: 0x2E): "´", KeyStroke(usage: 0x2E, modifiers: shift): "`",
        ]
        return KeyboardLayout(name: "de", strokes: t, deadKeys: dead)
    }()

    /// French AZERTY. `^` and `¨` are dead keys (`^` then `e` types `ê`); `^` itself is also
    /// AltGr+9, which is not dead. `~` and `` ` `` on AltGr are plain, as in xkb `fr`.
    public static let fr: KeyboardLayout = {
        var t = baseTable()
        let swaps: [(Character, UInt8)] = [("a", 0x14), ("q", 0x04), ("z", 0x1A), ("w", 0x1D), ("m", 0x33)]
        for (c, u) in swaps {
            t[c] = KeyStroke(usage: u)
            t[Character(String(c).uppercased())] = KeyStroke(usage: u, modifiers: shift)
        }
        for (offset, character) in "1234567890".enumerated() {
            t[character] = KeyStroke(usage: UInt8(0x1E + offset), modifiers: shift)
        }
        let entries: [(Character, UInt8, UInt8)] = [
            ("&", 0x1E, 0), ("é", 0x1F, 0), ("~", 0x1F, altGr), ("\"", 0x20, 0), ("#", 0x20, altGr),
            ("'", 0x21, 0), ("{", 0x21, altGr), ("(", 0x22, 0), ("[", 0x22, altGr), ("-", 0x23, 0),
            ("|", 0x23, altGr), ("è", 0x24, 0), ("`", 0x24, altGr), ("_", 0x25, 0), ("\\", 0x25, altGr),
            ("ç", 0x26, 0), ("^", 0x26, altGr), ("à", 0x27, 0), ("@", 0x27, altGr), (")", 0x2D, 0), ("°", 0x2D, shift),
            ("]", 0x2D, altGr), ("=", 0x2E, 0), ("+", 0x2E, shift), ("}", 0x2E, altGr),
            ("$", 0x30, 0), ("£", 0x30, shift), ("*", 0x31, 0), ("µ", 0x31, shift), ("ù", 0x34, 0),
            ("%", 0x34, shift), (",", 0x10, 0), ("?", 0x10, shift), (";", 0x36, 0), (".", 0x36, shift),
            (":", 0x37, 0), ("/", 0x37, shift), ("!", 0x38, 0), ("§", 0x38, shift), ("<", 0x64, 0),
            (">", 0x64, shift), ("€", 0x08, altGr), ("²", 0x35, 0),
        ]
        for (c, u, m) in entries { t[c] = KeyStroke(usage: u, modifiers: m) }
        let dead: [KeyStroke: Character] = [KeyStroke(usage: 0x2F): "^", KeyStroke(usage: 0x2F, modifiers: shift): "¨"]
        return KeyboardLayout(name: "fr", strokes: t, deadKeys: dead)
    }()
}
