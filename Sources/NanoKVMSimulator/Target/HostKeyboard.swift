// The host operating system's keyboard driver: turns the keyboard reports it receives into
// characters the way a Linux desktop does. Each report's changes become key events (modifier
// bits first, then releases, then presses); XKB keycodes are the kernel's evdev codes + 8; the
// keymap is compiled by libxkbcommon from the host layout's XKB name, and a pressed key's keysym
// (from the state before the press) goes through Debian's Compose data, so dead keys compose.
//
// This is the forward direction only: it never looks at the client's reverse table
// (KeyboardLayout.strokes), so `dev:type` and the host test each other. Layouts without an XKB
// name (the built-in tables `.us`, `.uk`, `.de`, `.fr`) and hosts without libxkbcommon decode
// through the built-in table.

import CXKBCommon
import NanoKVM

struct HostKeyboard: Sendable {
    let layout: KeyboardLayout
    private var session: XKBSession?
    private var deadKey = KeyboardLayout.DeadKeyState()
    private var modifiers: UInt8 = 0
    private var keys: [UInt8] = []
    private var locks = HostLocks()

    /// Caps Lock and Num Lock as the keymap's state holds them (a desktop drives the LEDs
    /// from it): a key locks only what its keysym locks, so neo's CapsLock (level 3 while
    /// held) locks nothing and its two Shifts lock Caps Lock.
    struct HostLocks: Sendable, Equatable {
        var capsLock = false
        var numLock = false
    }

    /// True when the keymap's state decides the locks (libxkbcommon); false when the host
    /// toggles them itself on the CapsLock and NumLock usages (the built-in tables).
    var keymapDrivesLocks: Bool { session != nil }

    /// The locks after the last report when that report changed them, else nil.
    private(set) var changedLocks: HostLocks?

    init(layout: KeyboardLayout) {
        self.layout = layout
        if let name = layout.xkbName, XKBEngine.loadError == nil { session = XKBSession(name) }
    }

    /// Forgets pressed keys, modifier state and a pending dead key (power off, reboot).
    mutating func reset() {
        self = HostKeyboard(layout: layout)
    }

    /// Takes one report (modifier byte and the pressed usages); returns what each newly
    /// pressed usage types ("" for none). `capsLock` is the host's lock state for the table
    /// fallback (libxkbcommon keeps its own from the Caps Lock key).
    mutating func apply(modifiers newModifiers: UInt8, keys newKeys: [UInt8], capsLock: Bool) -> [UInt8: String] {
        let newlyPressed = newKeys.filter { !keys.contains($0) }
        defer {
            modifiers = newModifiers
            keys = newKeys
        }
        guard let session else {
            var texts: [UInt8: String] = [:]
            for usage in newlyPressed {
                texts[usage] = layout.text(usage: usage, modifiers: newModifiers, capsLock: capsLock, pending: &deadKey)
            }
            return texts
        }
        for bit in 0..<8 {
            let mask = UInt8(1) << bit
            guard (modifiers ^ newModifiers) & mask != 0,
                  let keycode = EvdevUsages.xkbKeycode(usage: EvdevUsages.modifierUsages[bit]) else { continue }
            session.update(keycode, down: newModifiers & mask != 0)
        }
        for usage in keys where !newKeys.contains(usage) {
            if let keycode = EvdevUsages.xkbKeycode(usage: usage) { session.update(keycode, down: false) }
        }
        var texts: [UInt8: String] = [:]
        for usage in newlyPressed {
            guard let keycode = EvdevUsages.xkbKeycode(usage: usage) else { continue }
            texts[usage] = session.press(keycode)
        }
        let newLocks = session.locks
        changedLocks = newLocks == locks ? nil : newLocks
        locks = newLocks
        return texts
    }
}

/// libxkbcommon's keymap, key state and compose state of one host. Only used by its
/// HostKeyboard, which lives inside the VirtualHost's lock.
final class XKBSession: @unchecked Sendable {
    // safe: the C objects are touched only through the owning HostKeyboard, which the
    // VirtualHost's Mutex serialises; none is shared with another session.
    private let context: OpaquePointer
    private let keymap: OpaquePointer
    private let state: OpaquePointer
    private let composeTable: OpaquePointer?
    private let compose: OpaquePointer?

    init?(_ name: XKBLayoutName) {
        guard let context = kvm_xkb_quiet_context() else { return nil }
        let keymap = "evdev".withCString { rules in
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
        guard let keymap, let state = kvm_xkb_state_new(keymap) else {
            if let keymap { kvm_xkb_keymap_unref(keymap) }
            kvm_xkb_context_unref(context)
            return nil
        }
        self.context = context
        self.keymap = keymap
        self.state = state
        composeTable = kvm_xkb_compose_table_utf8(context)
        compose = composeTable.flatMap { kvm_xkb_compose_state_new($0, XKB_COMPOSE_STATE_NO_FLAGS) }
    }

    deinit {
        if let compose { kvm_xkb_compose_state_unref(compose) }
        if let composeTable { kvm_xkb_compose_table_unref(composeTable) }
        kvm_xkb_state_unref(state)
        kvm_xkb_keymap_unref(keymap)
        kvm_xkb_context_unref(context)
    }

    /// The Caps Lock and Num Lock indicators of the state.
    var locks: HostKeyboard.HostLocks {
        HostKeyboard.HostLocks(
            capsLock: kvm_xkb_state_led_name_is_active(state, XKB_LED_NAME_CAPS) == 1,
            numLock: kvm_xkb_state_led_name_is_active(state, XKB_LED_NAME_NUM) == 1)
    }

    func update(_ keycode: UInt32, down: Bool) {
        _ = kvm_xkb_state_update_key(state, keycode, down ? XKB_KEY_DOWN : XKB_KEY_UP)
    }

    /// A key press: the text it types (composed, "" while a dead key waits or when nothing).
    func press(_ keycode: UInt32) -> String {
        let keysym = kvm_xkb_state_key_get_one_sym(state, keycode)
        update(keycode, down: true)
        guard keysym != 0 else { return "" }
        if let compose, kvm_xkb_compose_state_feed(compose, keysym) == XKB_COMPOSE_FEED_ACCEPTED {
            switch kvm_xkb_compose_state_get_status(compose) {
            case XKB_COMPOSE_COMPOSING:
                return ""
            case XKB_COMPOSE_COMPOSED:
                var buffer = [CChar](repeating: 0, count: 64)
                let length = kvm_xkb_compose_state_get_utf8(compose, &buffer, buffer.count)
                kvm_xkb_compose_state_reset(compose)
                guard length > 0, length < buffer.count else { return "" }
                return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            case XKB_COMPOSE_CANCELLED:
                // A dead key followed by a key it does not compose with: both are dropped,
                // as GTK and Qt do.
                kvm_xkb_compose_state_reset(compose)
                return ""
            default:
                break
            }
        }
        let value = kvm_xkb_keysym_to_utf32(keysym)
        guard value >= 0x20, value != 0x7F, let scalar = Unicode.Scalar(value) else { return "" }
        return String(Character(scalar))
    }
}
