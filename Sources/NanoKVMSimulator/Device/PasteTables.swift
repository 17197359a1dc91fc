// The device's own paste tables (§6.3.1): which key position the server types for each
// character, by `langue`. They describe what the server sends, not what a host shows: a host
// whose layout does not match prints something else, exactly as with a real device.

struct PasteKey: Sendable, Equatable {
    var modifiers: UInt8
    var usage: UInt8
}

enum PasteTables {
    /// US table (langue absent, "", "en", "ru" or unknown).
    static let us: [Character: PasteKey] = {
        var t: [Character: PasteKey] = [:]
        for (i, c) in "abcdefghijklmnopqrstuvwxyz".enumerated() {
            t[c] = PasteKey(modifiers: 0, usage: UInt8(4 + i))
            t[Character(String(c).uppercased())] = PasteKey(modifiers: 2, usage: UInt8(4 + i))
        }
        for (i, c) in "1234567890".enumerated() { t[c] = PasteKey(modifiers: 0, usage: UInt8(30 + i)) }
        for (i, c) in "!@#$%^&*()".enumerated() { t[c] = PasteKey(modifiers: 2, usage: UInt8(30 + i)) }
        let plain: [(Character, UInt8)] = [
            ("\n", 40), ("\t", 43), (" ", 44), ("-", 45), ("=", 46), ("[", 47), ("]", 48), ("\\", 49), (";", 51),
            ("'", 52), ("`", 53), (",", 54), (".", 55), ("/", 56),
        ]
        let shifted: [(Character, UInt8)] = [
            ("_", 45), ("+", 46), ("{", 47), ("}", 48), ("|", 49), (":", 51), ("\"", 52), ("~", 53), ("<", 54),
            (">", 55), ("?", 56),
        ]
        for (c, u) in plain { t[c] = PasteKey(modifiers: 0, usage: u) }
        for (c, u) in shifted { t[c] = PasteKey(modifiers: 2, usage: u) }
        return t
    }()

    static let german: [Character: PasteKey] = {
        var t = us
        let changes: [(Character, UInt8, UInt8)] = [
            ("y", 0, 29), ("Y", 2, 29), ("z", 0, 28), ("Z", 2, 28), ("ä", 0, 52), ("Ä", 2, 52), ("ö", 0, 51),
            ("Ö", 2, 51), ("ü", 0, 47), ("Ü", 2, 47), ("ß", 0, 45), ("^", 0, 53), ("/", 2, 36), ("(", 2, 37),
            ("&", 2, 35), (")", 2, 38), ("`", 2, 46), ("\"", 2, 31), ("?", 2, 45), ("{", 0x40, 36), ("[", 0x40, 37),
            ("]", 0x40, 38), ("}", 0x40, 39), ("\\", 0x40, 45), ("@", 0x40, 20), ("+", 0, 48), ("*", 2, 48),
            ("~", 0x40, 48), ("#", 0, 49), ("'", 2, 49), ("<", 0, 100), (">", 2, 100), ("|", 0x40, 100),
            (";", 2, 54), (":", 2, 55), ("-", 0, 56), ("_", 2, 56), ("´", 0, 46), ("°", 2, 53), ("§", 2, 32),
            ("€", 0x40, 8), ("²", 0x40, 31), ("³", 0x40, 32),
        ]
        for (c, m, u) in changes { t[c] = PasteKey(modifiers: m, usage: u) }
        return t
    }()

    static let french: [Character: PasteKey] = {
        var t = us
        var changes: [(Character, UInt8, UInt8)] = [
            ("a", 0, 20), ("A", 2, 20), ("q", 0, 4), ("Q", 2, 4), ("z", 0, 26), ("Z", 2, 26), ("w", 0, 29),
            ("W", 2, 29), ("m", 0, 51), ("M", 2, 51),
        ]
        for (i, c) in "1234567890".enumerated() { changes.append((c, 2, UInt8(30 + i))) }
        changes += [
            ("&", 0, 30), ("é", 0, 31), ("\"", 0, 32), ("'", 0, 33), ("(", 0, 34), ("-", 0, 35), ("è", 0, 36),
            ("_", 0, 37), ("ç", 0, 38), ("à", 0, 39), (")", 0, 45), ("°", 2, 45), ("^", 0, 47), ("¨", 2, 47),
            ("$", 0, 48), ("£", 2, 48), ("*", 0, 49), ("µ", 2, 49), ("ù", 0, 52), ("%", 2, 52), (",", 0, 16),
            ("?", 2, 16), (";", 0, 54), (".", 2, 54), (":", 0, 55), ("/", 2, 55), ("!", 0, 56), ("§", 2, 56),
            ("~", 0x40, 31), ("#", 0x40, 32), ("{", 0x40, 33), ("[", 0x40, 34), ("|", 0x40, 35), ("`", 0x40, 36),
            ("\\", 0x40, 37), ("]", 0x40, 45), ("}", 0x40, 46), ("@", 0x40, 39), ("€", 0x40, 8),
        ]
        for (c, m, u) in changes { t[c] = PasteKey(modifiers: m, usage: u) }
        return t
    }()

    /// The table the server uses for `langue` on a device of `profile`.
    static func table(langue: String, profile: Profile) -> [Character: PasteKey] {
        if langue == "de", profile.atLeast("2.3.0") { return german }
        if langue == "fr", profile.atLeast("2.4.1") { return french }
        return us
    }
}
