// USB HID usages of the Keyboard/Keypad page (0x07) and the Linux input event codes (evdev
// KEY_*) a Linux host gives them: the table of the kernel's HID input driver, written from the
// HID Usage Tables and <linux/input-event-codes.h>. XKB keycodes are these codes + 8.
// Shared by the client (which key a keymap's keycode is) and the simulator's host (which
// keycode a report's usage is), as on a real Linux host.

public enum EvdevUsages {
    /// HID usage → evdev key code (0 = none). Both 0x31 (US `\`) and 0x32 (ISO `#`, left of
    /// Enter) are KEY_BACKSLASH on Linux: it is the same key position in every keymap.
    public static let code: [UInt16] = {
        var table = [UInt16](repeating: 0, count: 256)
        // a … z
        let letters: [UInt16] = [30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47, 17, 45, 21, 44]
        for (offset, code) in letters.enumerated() { table[0x04 + offset] = code }
        // 1 … 9, 0
        for offset in 0..<10 { table[0x1E + offset] = UInt16(2 + offset) }
        let pairs: [(Int, UInt16)] = [
            (0x28, 28), (0x29, 1), (0x2A, 14), (0x2B, 15), (0x2C, 57), (0x2D, 12), (0x2E, 13), (0x2F, 26),
            (0x30, 27), (0x31, 43), (0x32, 43), (0x33, 39), (0x34, 40), (0x35, 41), (0x36, 51), (0x37, 52),
            (0x38, 53), (0x39, 58),
            // F1 … F12
            (0x3A, 59), (0x3B, 60), (0x3C, 61), (0x3D, 62), (0x3E, 63), (0x3F, 64), (0x40, 65), (0x41, 66),
            (0x42, 67), (0x43, 68), (0x44, 87), (0x45, 88),
            (0x46, 99), (0x47, 70), (0x48, 119), (0x49, 110), (0x4A, 102), (0x4B, 104), (0x4C, 111), (0x4D, 107),
            (0x4E, 109), (0x4F, 106), (0x50, 105), (0x51, 108), (0x52, 103),
            // Keypad: NumLock / * - + Enter 1 … 9 0 .
            (0x53, 69), (0x54, 98), (0x55, 55), (0x56, 74), (0x57, 78), (0x58, 96), (0x59, 79), (0x5A, 80),
            (0x5B, 81), (0x5C, 75), (0x5D, 76), (0x5E, 77), (0x5F, 71), (0x60, 72), (0x61, 73), (0x62, 82),
            (0x63, 83),
            // The ISO key left of Z (KEY_102ND, XKB <LSGT>), Menu, Power, keypad =
            (0x64, 86), (0x65, 127), (0x66, 116), (0x67, 117),
            // F13 … F24
            (0x68, 183), (0x69, 184), (0x6A, 185), (0x6B, 186), (0x6C, 187), (0x6D, 188), (0x6E, 189),
            (0x6F, 190), (0x70, 191), (0x71, 192), (0x72, 193), (0x73, 194),
            (0x74, 134), (0x75, 138), (0x76, 130), (0x77, 132), (0x78, 128), (0x79, 129), (0x7A, 131),
            (0x7B, 137), (0x7C, 133), (0x7D, 135), (0x7E, 136), (0x7F, 113), (0x80, 115), (0x81, 114),
            // Keypad comma, Japanese and Korean keys
            (0x85, 121), (0x87, 89), (0x88, 93), (0x89, 124), (0x8A, 92), (0x8B, 94), (0x8C, 95),
            (0x90, 122), (0x91, 123), (0x92, 90), (0x93, 91), (0x94, 85), (0xB6, 179), (0xB7, 180),
            // Modifiers
            (0xE0, 29), (0xE1, 42), (0xE2, 56), (0xE3, 125), (0xE4, 97), (0xE5, 54), (0xE6, 100), (0xE7, 126),
        ]
        for (usage, code) in pairs { table[usage] = code }
        return table
    }()

    /// The XKB keycode (evdev + 8) of a HID usage, nil when Linux has none for it.
    public static func xkbKeycode(usage: UInt8) -> UInt32? {
        let evdev = code[Int(usage)]
        return evdev == 0 ? nil : UInt32(evdev) + 8
    }

    /// The usages of the modifier bits of byte 0 of a keyboard report, bit 0 first.
    public static let modifierUsages: [UInt8] = [0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7]
}
