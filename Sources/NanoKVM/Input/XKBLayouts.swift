// Every XKB keyboard layout, through libxkbcommon and Debian's xkb-data: the keymap of
// `layout(variant)` is compiled as a Linux desktop compiles it, and turned into the reverse table
// `dev:type` needs (character → HID usage + modifier bits), levels 1–4 (Shift, level 3 =
// ISO_Level3_Shift, Shift + level 3; level 3 is AltGr on most layouts, a key held in the report
// on neo), the ISO key <LSGT> (usage 0x64), the keypad last. Characters that only a dead key
// reaches are a dead key followed by a base key, as Debian's Compose data composes them.
//
// The table is built once per layout per process and is plain Swift data afterwards: no C
// object outlives the build. libxkbcommon is loaded on first use (CXKBCommon/shim.h).

import CXKBCommon
import Foundation
import Synchronization

/// An XKB layout name: `layout` with an optional `variant`, written `layout(variant)`.
public struct XKBLayoutName: Sendable, Hashable, CustomStringConvertible {
    public var layout: String
    public var variant: String

    public init(layout: String, variant: String = "") {
        self.layout = layout
        self.variant = variant
    }

    /// `ch`, `ch(fr)`; nil for anything else (XKB names are letters, digits, `_` and `-`).
    public init?(parsing text: String) {
        var layout = Substring(text)
        var variant: Substring = ""
        if let open = text.firstIndex(of: "(") {
            guard text.hasSuffix(")") else { return nil }
            layout = text[..<open]
            variant = text[text.index(after: open)..<text.index(before: text.endIndex)]
            guard !variant.isEmpty else { return nil }
        }
        func valid(_ part: Substring) -> Bool {
            part.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" }
        }
        guard !layout.isEmpty, valid(layout), valid(variant) else { return nil }
        self.init(layout: String(layout), variant: String(variant))
    }

    public var description: String { variant.isEmpty ? layout : "\(layout)(\(variant))" }
}

/// One layout or variant the machine's xkb-data has (`kvm.layouts()`).
public struct XKBLayoutInfo: Sendable, Hashable {
    public var name: String
    /// "" for the layout itself.
    public var variant: String
    public var description: String

    public init(name: String, variant: String, description: String) {
        self.name = name
        self.variant = variant
        self.description = description
    }

    public var xkbName: XKBLayoutName { XKBLayoutName(layout: name, variant: variant) }
}

/// The layout engine: compiles keymaps and builds reverse tables, caches them per process.
public enum XKBEngine {
    /// Nil when libxkbcommon can be used, else a sentence naming the Debian packages.
    public static var loadError: String? {
        guard let message = kvm_xkb_load_error() else { return nil }
        return String(cString: message)
    }

    private static let cache = Mutex<[XKBLayoutName: KeyboardLayout]>([:])
    private static let rulesFile = "/usr/share/X11/xkb/rules/evdev.lst"

    /// The reverse table of `name`, built on first use. Raises `usage` when the layout does not
    /// exist or libxkbcommon is missing.
    public static func layout(_ name: XKBLayoutName) throws(NanoKVMError) -> KeyboardLayout {
        if let cached = cache.withLock({ $0[name] }) { return cached }
        if let loadError {
            throw NanoKVMError(.usage, "keyboard layout '\(name)' needs libxkbcommon: \(loadError); without it only us, uk, de and fr can be typed")
        }
        let built = try build(name)
        cache.withLock { $0[name] = built }
        return built
    }

    /// The layouts and variants of the machine's xkb-data (`evdev.lst`), layouts first; the
    /// four built-in ones when xkb-data or libxkbcommon is missing.
    public static func available() -> [XKBLayoutInfo] {
        guard loadError == nil, let text = try? String(contentsOfFile: rulesFile, encoding: .utf8) else {
            return [
                XKBLayoutInfo(name: "us", variant: "", description: "English (US), built in"),
                XKBLayoutInfo(name: "uk", variant: "", description: "English (UK), built in"),
                XKBLayoutInfo(name: "de", variant: "", description: "German, built in"),
                XKBLayoutInfo(name: "fr", variant: "", description: "French, built in"),
            ]
        }
        var layouts: [XKBLayoutInfo] = []
        var variants: [XKBLayoutInfo] = []
        var section = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("!") {
                section = line.dropFirst().trimmingCharacters(in: .whitespaces)
                continue
            }
            let trimmed = line.drop { $0 == " " }
            guard let space = trimmed.firstIndex(of: " ") else { continue }
            let key = String(trimmed[..<space])
            let rest = trimmed[space...].trimmingCharacters(in: .whitespaces)
            switch section {
            case "layout":
                layouts.append(XKBLayoutInfo(name: key, variant: "", description: rest))
            case "variant":
                // "  fr              ch: French (Switzerland)"
                guard let colon = rest.firstIndex(of: ":") else { continue }
                let layout = String(rest[..<colon])
                let description = rest[rest.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                variants.append(XKBLayoutInfo(name: layout, variant: key, description: description))
            default:
                continue
            }
        }
        return layouts + variants
    }

    /// Common layouts checked when a character cannot be typed, to name the ones that could.
    public static let commonLayouts = [
        "us", "gb", "de", "fr", "ch(fr)", "ch", "it", "es", "pt", "br", "se", "no", "dk", "fi", "pl", "cz", "hu",
        "be", "nl", "us(intl)", "fr(bepo)", "de(neo)", "tr", "ru", "gr",
    ]

    /// The common layouts (`commonLayouts`) that can type `character`, at most `limit`.
    public static func layoutsTyping(_ character: Character, limit: Int = 8) -> [String] {
        guard loadError == nil else {
            return KeyboardLayout.all.filter { $0.keystrokes(for: character) != nil }.map(\.name)
        }
        var found: [String] = []
        for name in commonLayouts {
            guard let parsed = XKBLayoutName(parsing: name), let table = try? layout(parsed) else { continue }
            if table.keystrokes(for: character) != nil { found.append(name) }
            if found.count >= limit { break }
        }
        return found
    }

    // MARK: Building a table

    /// Keys in the order they are preferred when several type the same character with as many
    /// modifiers: the digit row and punctuation (AltGr+2 is the `@` Swiss typists know, not
    /// AltGr+Q), the ISO key, the letters, the Japanese keys, then the keypad. 0x32 is the same
    /// Linux key as 0x31.
    private static let mainUsages: [UInt8] = Array(0x1E...0x27) + [0x2C] + Array(0x2D...0x31) + Array(0x33...0x38) + [0x64]
        + Array(0x04...0x1D) + [0x87, 0x89]
    private static let keypadUsages: [UInt8] = [0x54, 0x55, 0x56, 0x57, 0x63, 0x67, 0x85]

    private struct Candidate {
        var stroke: KeyStroke
        var keysym: xkb_keysym_t
        /// Lower is simpler: keypad last, fewer modifiers, Shift before AltGr, earlier keys first.
        var cost: Int
    }

    static func isDeadKeysym(_ keysym: xkb_keysym_t) -> Bool { (0xFE50...0xFE93).contains(keysym) }

    /// The printable character of a keysym, nil for control characters and keysyms without one.
    static func character(of keysym: xkb_keysym_t) -> Character? {
        let value = kvm_xkb_keysym_to_utf32(keysym)
        guard value >= 0x20, value != 0x7F, !(0x80..<0xA0).contains(value), let scalar = Unicode.Scalar(value) else { return nil }
        return Character(scalar)
    }

    /// Compiles the keymap of `name` and builds its table, without the cache (`layout(_:)`
    /// caches; benchmarks measure this).
    public static func build(_ name: XKBLayoutName) throws(NanoKVMError) -> KeyboardLayout {
        try shared.withLock { (cache: inout SharedContext) throws(NanoKVMError) -> KeyboardLayout in
            if cache.context == nil { cache.context = kvm_xkb_quiet_context() }
            guard let context = cache.context else {
                throw NanoKVMError(.usage, "keyboard layout '\(name)': libxkbcommon could not start (install xkb-data)")
            }
            if !cache.composeLoaded {
                cache.composeTable = kvm_xkb_compose_table_utf8(context)
                cache.composeLoaded = true
            }
            return try build(name, context: context, composeTable: cache.composeTable)
        }
    }

    /// One libxkbcommon context (include paths, parsed files) and the parsed Compose table for
    /// every build of the process: they are the same for every layout, and parsing the Compose
    /// file alone costs about 4 ms. libxkbcommon objects are not thread-safe: used only under
    /// the lock, kept for the life of the process.
    private struct SharedContext {
        var context: OpaquePointer?
        var composeTable: OpaquePointer?
        var composeLoaded = false
    }

    private static let shared = Mutex(SharedContext())

    private static func build(_ name: XKBLayoutName, context: OpaquePointer, composeTable: OpaquePointer?) throws(NanoKVMError) -> KeyboardLayout {
        guard let keymap = compile(context, name) else {
            throw NanoKVMError(.usage, "unknown keyboard layout '\(name)': xkb-data has no such layout or variant (kvm.layouts() lists them)")
        }
        defer { kvm_xkb_keymap_unref(keymap) }

        // Which ways of holding keys produce which XKB modifier mask on this keymap (first
        // wins: the simplest way to a mask). Level 3 is ISO_Level3_Shift wherever the layout
        // puts it: AltGr on most, an ordinary key on neo (Mod3 on CapsLock and `#`, while
        // Right Alt is its level 5).
        var strokeWays: [xkb_mod_mask_t: HeldWay] = [:]
        var ways: [HeldWay] = [
            HeldWay(modifiers: 0), HeldWay(modifiers: KeyModifier.leftShift), HeldWay(modifiers: KeyModifier.rightAlt),
            HeldWay(modifiers: KeyModifier.leftShift | KeyModifier.rightAlt),
        ]
        switch levelThreeKey(keymap) {
        case let usage? where usage < 0xE0:
            ways += [HeldWay(modifiers: 0, heldUsage: usage), HeldWay(modifiers: KeyModifier.leftShift, heldUsage: usage)]
        case let usage? where usage != 0xE6:
            let bit = UInt8(1) << (usage - 0xE0)
            ways += [HeldWay(modifiers: bit), HeldWay(modifiers: KeyModifier.leftShift | bit)]
        default:
            break
        }
        for way in ways {
            guard let state = kvm_xkb_state_new(keymap) else { continue }
            for keycode in way.keycodes { _ = kvm_xkb_state_update_key(state, keycode, XKB_KEY_DOWN) }
            let mask = kvm_xkb_state_serialize_mods(state, XKB_STATE_MODS_EFFECTIVE)
            kvm_xkb_state_unref(state)
            if strokeWays[mask] == nil { strokeWays[mask] = way }
        }

        // Every key and level reachable in those ways.
        var candidates: [Candidate] = []
        for (order, usage) in (mainUsages + keypadUsages).enumerated() {
            guard let keycode = EvdevUsages.xkbKeycode(usage: usage) else { continue }
            let keypad = order >= mainUsages.count
            let levels = kvm_xkb_keymap_num_levels_for_key(keymap, keycode, 0)
            for level in 0..<levels {
                var symbols: UnsafePointer<xkb_keysym_t>?
                let count = kvm_xkb_keymap_key_get_syms_by_level(keymap, keycode, 0, level, &symbols)
                guard count == 1, let keysym = symbols?.pointee else { continue }
                var masks = [xkb_mod_mask_t](repeating: 0, count: 16)
                let maskCount = kvm_xkb_keymap_key_get_mods_for_level(keymap, keycode, 0, level, &masks, masks.count)
                var best: HeldWay?
                for mask in masks.prefix(maskCount) {
                    guard let way = strokeWays[mask], way.heldUsage != usage else { continue }
                    if best.map({ way.cost < $0.cost }) ?? true { best = way }
                }
                guard let way = best else { continue }
                candidates.append(Candidate(
                    stroke: KeyStroke(usage: usage, modifiers: way.modifiers, heldUsage: way.heldUsage), keysym: keysym,
                    cost: (keypad ? 10_000 : 0) + way.cost * 1_000 + order))
            }
        }
        candidates.sort { $0.cost < $1.cost }

        var strokes: [Character: KeyStroke] = ["\n": KeyStroke(usage: 0x28), "\t": KeyStroke(usage: 0x2B)]
        var deadCandidates: [Candidate] = []
        var baseCandidates: [Candidate] = []
        var seenDeadKeysyms = Set<xkb_keysym_t>()
        for candidate in candidates {
            if isDeadKeysym(candidate.keysym) {
                if seenDeadKeysyms.insert(candidate.keysym).inserted { deadCandidates.append(candidate) }
            } else if let character = character(of: candidate.keysym), strokes[character] == nil {
                strokes[character] = candidate.stroke
                baseCandidates.append(candidate)
            }
        }

        // Dead key + base key, as the compose data composes them.
        var sequences: [Character: [KeyStroke]] = [:]
        var deadKeys: [KeyStroke: Character] = [:]
        if !deadCandidates.isEmpty, let table = composeTable {
            if let compose = kvm_xkb_compose_state_new(table, XKB_COMPOSE_STATE_NO_FLAGS) {
                defer { kvm_xkb_compose_state_unref(compose) }
                var buffer = [CChar](repeating: 0, count: 64)
                for dead in deadCandidates {
                    for base in baseCandidates + deadCandidates {
                        kvm_xkb_compose_state_reset(compose)
                        _ = kvm_xkb_compose_state_feed(compose, dead.keysym)
                        _ = kvm_xkb_compose_state_feed(compose, base.keysym)
                        guard kvm_xkb_compose_state_get_status(compose) == XKB_COMPOSE_COMPOSED else { continue }
                        let length = kvm_xkb_compose_state_get_utf8(compose, &buffer, buffer.count)
                        guard length > 0, length < buffer.count else { continue }
                        let text = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                        guard text.count == 1, let composed = text.first, composed.unicodeScalars.allSatisfy({ $0.value >= 0x20 }) else { continue }
                        if base.keysym == 0x20, deadKeys[dead.stroke] == nil { deadKeys[dead.stroke] = composed }
                        if strokes[composed] == nil, sequences[composed] == nil {
                            sequences[composed] = [dead.stroke, base.stroke]
                        }
                    }
                }
            }
        }
        return KeyboardLayout(name: name.description, xkbName: name, strokes: strokes, deadKeys: deadKeys, sequences: sequences)
    }

    /// Modifier bits and possibly an ordinary key held with a stroke.
    private struct HeldWay {
        var modifiers: UInt8
        var heldUsage: UInt8?

        /// The XKB keycodes pressed: the modifiers' keys, then the held key.
        var keycodes: [UInt32] {
            var keycodes: [UInt32] = []
            for (bit, usage) in EvdevUsages.modifierUsages.enumerated() where modifiers & (UInt8(1) << bit) != 0 {
                if let keycode = EvdevUsages.xkbKeycode(usage: usage) { keycodes.append(keycode) }
            }
            if let heldUsage, let keycode = EvdevUsages.xkbKeycode(usage: heldUsage) { keycodes.append(keycode) }
            return keycodes
        }

        /// Lower is simpler: fewer modifiers first, Shift before AltGr; a held key after Right
        /// Alt alone (it is an extra report, and the legacy protocol cannot send it: neo's
        /// level 5 wins over its level 3 for a character on both) but before Shift + Right Alt.
        var cost: Int {
            modifiers.nonzeroBitCount * 2 + (modifiers & KeyModifier.rightAlt != 0 ? 1 : 0) + (heldUsage == nil ? 0 : 4)
        }
    }

    /// The key whose first level is ISO_Level3_Shift: a modifier (Right Alt, sent as its bit)
    /// when one is, else the first ordinary key in usage order. On neo that is `#`/BKSL (0x31)
    /// before CapsLock (0x39): on a host whose layout is not neo a stray `#` is visible and
    /// harmless where CapsLock would switch on Caps Lock for everything typed after it.
    /// Nil when the layout has no level 3.
    static func levelThreeKey(_ keymap: OpaquePointer) -> UInt8? {
        var found: UInt8?
        for usage in EvdevUsages.modifierUsages + Array(0x04...0xDF) {
            guard let keycode = EvdevUsages.xkbKeycode(usage: usage) else { continue }
            var symbols: UnsafePointer<xkb_keysym_t>?
            let count = kvm_xkb_keymap_key_get_syms_by_level(keymap, keycode, 0, 0, &symbols)
            guard count == 1, symbols?.pointee == levelThreeShiftKeysym else { continue }
            if usage >= 0xE0 { return usage }
            if found == nil { found = usage }
        }
        return found
    }

    /// XKB_KEY_ISO_Level3_Shift.
    static let levelThreeShiftKeysym: xkb_keysym_t = 0xFE03

    /// The keymap of `name` with the evdev rules and a pc105 keyboard (the one with the ISO key).
    static func compile(_ context: OpaquePointer, _ name: XKBLayoutName) -> OpaquePointer? {
        "evdev".withCString { rules in
            "pc105".withCString { model in
                name.layout.withCString { layout in
                    name.variant.withCString { variant in
                        "".withCString { options in
                            var names = xkb_rule_names(rules: rules, model: model, layout: layout, variant: variant, options: options)
                            return kvm_xkb_keymap_new_from_names(context, &names, XKB_KEYMAP_COMPILE_NO_FLAGS)
                        }
                    }
                }
            }
        }
    }
}
