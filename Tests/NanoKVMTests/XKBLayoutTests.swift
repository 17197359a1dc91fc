import Foundation
import NanoKVM
import NanoKVMSimulator
import Testing

/// The acceptance layouts of issue 15 (every one Debian's xkb-data has).
let acceptanceLayouts = [
    "us", "gb", "de", "fr", "ch(fr)", "ch(de)", "it", "es", "pt", "br", "se", "no", "dk", "fi", "pl", "cz", "hu",
    "be", "nl", "us(intl)", "fr(bepo)", "de(neo)",
]

/// Every character `layout` types (one key stroke, levels 1–4) and every dead-key composition,
/// in a fixed order. Characters that would merge with the one before them into one grapheme
/// (combining marks, joiners) are left out: they are no character of their own in a String.
func everyTypeableCharacter(_ layout: KeyboardLayout) -> String {
    let all = Set(layout.strokes.keys).union(layout.sequences.keys)
    return String(all.sorted().filter { ("a" + String($0)).count == 2 })
}

@Suite("XKB layouts: libxkbcommon tables, the simulated host's forward decoding", .timeLimit(.minutes(1)))
struct XKBLayoutTests {
    @Test("Tables: AltGr, the ISO key, dead keys; aliases; unknown names raise usage")
    func tables() throws {
        #expect(XKBEngine.loadError == nil, "libxkbcommon must be installed for these tests (scripts/setup)")
        let swissFrench = try KeyboardLayout.resolve("ch(fr)")
        #expect(swissFrench.name == "ch(fr)" && swissFrench.xkbName == XKBLayoutName(layout: "ch", variant: "fr"))
        // The Swiss AltGr characters of NanoKVM #85.
        #expect(swissFrench.keystrokes(for: "@") == [KeyStroke(usage: 0x1F, modifiers: KeyModifier.rightAlt)])
        #expect(swissFrench.keystrokes(for: "#") == [KeyStroke(usage: 0x20, modifiers: KeyModifier.rightAlt)])
        #expect(swissFrench.keystrokes(for: "\\") == [KeyStroke(usage: 0x64, modifiers: KeyModifier.rightAlt)])
        #expect(swissFrench.keystrokes(for: "|") != nil)
        #expect(swissFrench.keystrokes(for: "z") == [KeyStroke(usage: 0x1C)])
        // UK: `£`, `|` and `\` (#228, #254, #566), the ISO key left of Z.
        let british = try KeyboardLayout.resolve("uk")
        #expect(british.name == "gb")
        #expect(british.keystrokes(for: "£") == [KeyStroke(usage: 0x20, modifiers: KeyModifier.leftShift)])
        #expect(british.keystrokes(for: "\\") == [KeyStroke(usage: 0x64)])
        #expect(british.keystrokes(for: "|") == [KeyStroke(usage: 0x64, modifiers: KeyModifier.leftShift)])
        // German dead keys: the accent, then the base key.
        let german = try KeyboardLayout.resolve("DE")
        #expect(german.keystrokes(for: "é") == [KeyStroke(usage: 0x2E), KeyStroke(usage: 0x08)])
        #expect(german.keystrokes(for: "^") == [KeyStroke(usage: 0x35), KeyStroke(usage: 0x2C)])
        #expect(try KeyboardLayout.resolve("de(nodeadkeys)").keystrokes(for: "^") == [KeyStroke(usage: 0x35)])
        // neo: level 3 is Mod3 (ISO_Level3_Shift on `#` and CapsLock), held in the report with
        // the key; Right Alt is its level 5. HID 0x08 (E on QWERTY) is neo's l.
        let neo = try KeyboardLayout.resolve("de(neo)")
        #expect(neo.keystrokes(for: "l") == [KeyStroke(usage: 0x08)])
        #expect(neo.keystrokes(for: "[") == [KeyStroke(usage: 0x08, heldUsage: 0x31)])
        #expect(neo.keystrokes(for: "λ") == [KeyStroke(usage: 0x08, modifiers: KeyModifier.leftShift, heldUsage: 0x31)])
        #expect(neo.keystrokes(for: "@") == [KeyStroke(usage: 0x34, heldUsage: 0x31)])
        // Hungarian (#648).
        let hungarian = try KeyboardLayout.resolve("hu")
        for character in "őűŐŰáéíóöúü" { #expect(hungarian.keystrokes(for: character) != nil, "\(character)") }
        // us has no AltGr level: no é, which us(intl) composes.
        #expect(try KeyboardLayout.resolve("us").keystrokes(for: "é") == nil)
        #expect(try KeyboardLayout.resolve("us(intl)").keystrokes(for: "é") != nil)
        for bad in ["xx", "ch(nope)", "ch(", "", "us; rm"] {
            #expect(throws: NanoKVMError.self) { try KeyboardLayout.resolve(bad) }
        }
        let listed = XKBEngine.available()
        #expect(listed.count > 500)
        #expect(listed.contains(XKBLayoutInfo(name: "ch", variant: "fr", description: "French (Switzerland)")))
        #expect(listed.contains { $0.name == "us" && $0.variant.isEmpty })
    }

    @Test("Every acceptance layout types a rich table, built once per process")
    func tableSizes() throws {
        for name in acceptanceLayouts {
            let layout = try KeyboardLayout.resolve(name)
            #expect(layout.strokes.count >= 95, "\(name): \(layout.strokes.count) single strokes")
            // Only neo has a level 3 that is not a modifier bit.
            let holding = layout.strokes.values.filter { $0.heldUsage != nil }
            #expect(name == "de(neo)" ? holding.count >= 60 : holding.isEmpty, "\(name): \(holding.count) strokes hold a key")
            let start = ContinuousClock.now
            _ = try KeyboardLayout.resolve(name)
            #expect(ContinuousClock.now - start < .milliseconds(5), "\(name): the second resolve is cached")
        }
    }

    @Test("Every character of 22 layouts arrives exactly at a host with that layout", arguments: bothGenerations, acceptanceLayouts)
    func roundTrip(generation: SimulatorGeneration, name: String) async throws {
        let layout = try KeyboardLayout.resolve(name)
        try await withDevice(generation, configure: { $0.hostLayout = layout }) { simulator, client in
            let hid = client.makeHIDController()
            do {
                var text = everyTypeableCharacter(layout)
                let holding = text.filter { layout.keystrokes(for: $0)?.contains { $0.heldUsage != nil } == true }
                if generation == .legacy, let first = holding.first {
                    // One key per legacy message: neo's level 3 (a key held with another)
                    // cannot be sent, and says so before anything is sent.
                    let error = await expectError(.unsupported) {
                        try await hid.type("a" + String(first), options: TypingOptions(layout: layout, delay: 0))
                    }
                    #expect(error?.message.contains("one key") == true, "\(error?.message ?? "")")
                    text.removeAll { holding.contains($0) }
                }
                let before = simulator.transcript
                _ = try await hid.type(text, options: TypingOptions(layout: layout, delay: 0))
                #expect(await eventually(10) { simulator.transcript.count >= before.count + text.count })
                let got = String(simulator.transcript.dropFirst(before.count))
                #expect(got == text, "\(name)/\(generation): \(text.count) characters typed")
                if got != text {
                    let gotCharacters = Array(got), wantCharacters = Array(text)
                    if let index = zip(gotCharacters, wantCharacters).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                        let want = wantCharacters[index]
                        Issue.record("\(name): first difference at \(index): got \(String(gotCharacters[index...].prefix(6)).debugDescription) want \(String(wantCharacters[index...].prefix(6)).debugDescription) typed as \(layout.keystrokes(for: want) ?? [])")
                    }
                }
                #expect(await eventually { simulator.input.pressedKeys.isEmpty && simulator.input.modifiers == 0 })
                #expect(simulator.input.capsLock == false, "\(name): typing locked Caps Lock")
            }
            await hid.close()
        }
    }

    /// The key that is level 3 on the host, as its users know it: AltGr, neo's CapsLock (Mod3;
    /// the table itself holds the other Mod3 key, `#`).
    static func levelThree(_ name: String) -> KeyComponent {
        name == "de(neo)" ? .key(0x39) : .modifier(KeyModifier.rightAlt)
    }

    @Test("Levels 1–4 of every key, pressed on a host with that layout, are all in its table", arguments: acceptanceLayouts)
    func everyLevelIsInTheTable(name: String) async throws {
        let layout = try KeyboardLayout.resolve(name)
        try await withDevice(.current, configure: { $0.hostLayout = layout }) { simulator, client in
            let hid = client.makeHIDController()
            // Each key of the main block on each level, then Escape, which cancels a dead key
            // (a dead key types nothing; its compositions are the round trip's business).
            let usages: [UInt8] = Array(0x04...0x27) + [0x2C] + Array(0x2D...0x31) + Array(0x33...0x38) + [0x64]
            let levels: [[KeyComponent]] = [[], [.modifier(KeyModifier.leftShift)], [Self.levelThree(name)], [.modifier(KeyModifier.leftShift), Self.levelThree(name)]]
            var steps: [HIDTimedStep] = []
            for usage in usages {
                for held in levels {
                    steps.append(HIDTimedStep(0, .key(try KeyChord(components: held + [.key(usage)]))))
                    steps.append(HIDTimedStep(0, .key(try KeyChord(components: [.key(0x29)]))))
                }
            }
            // Enter last: when it arrives, so has everything before it.
            steps.append(HIDTimedStep(0, .key(try KeyChord(components: [.key(0x28)]))))
            let before = simulator.transcript
            _ = try await hid.play(steps, speed: 1000)
            #expect(await eventually(10) { simulator.transcript.count > before.count && simulator.transcript.hasSuffix("\n") })
            let typed = String(simulator.transcript.dropFirst(before.count).dropLast())
            let missing = Set(typed).subtracting(layout.strokes.keys).subtracting(layout.sequences.keys)
            #expect(missing.isEmpty, "\(name): the host types \(String(missing.sorted()).debugDescription), the table cannot")
            #expect(Set(typed).count >= 90, "\(name): \(Set(typed).count) characters on levels 1–4")
            #expect(simulator.input.capsLock == false)
            await hid.close()
        }
    }

    @Test("A wrong host layout shows: `@` typed for us arrives as something else on a ch(fr) host", arguments: bothGenerations)
    func wrongLayout(generation: SimulatorGeneration) async throws {
        try await withDevice(generation, configure: { $0.hostLayout = (try? KeyboardLayout.resolve("ch(fr)")) ?? .us }) { simulator, client in
            let hid = client.makeHIDController()
            let before = simulator.transcript
            // us: Shift+2. On ch(fr) Shift+2 is `"`.
            _ = try await hid.type("@", options: TypingOptions(layout: try KeyboardLayout.resolve("us"), delay: 0))
            #expect(await eventually { simulator.transcript.count > before.count })
            #expect(simulator.transcript == before + "\"")
            // The right layout types it (AltGr+2).
            _ = try await hid.type("@", options: TypingOptions(layout: try KeyboardLayout.resolve("ch(fr)"), delay: 0))
            #expect(await eventually { simulator.transcript == before + "\"@" })
            await hid.close()
        }
    }

    @Test("An untypeable character raises usage before anything is sent and names layouts that could")
    func untypeable() async throws {
        try await withDevice(.current) { simulator, client in
            let hid = client.makeHIDController()
            await clearReportsWhenQuiet(simulator)
            let error = await expectError(.usage) {
                try await hid.type("abc ő", options: TypingOptions(layout: try KeyboardLayout.resolve("us"), delay: 0))
            }
            #expect(error?.message.contains("'us'") == true, "\(error?.message ?? "")")
            // The layouts it names can type it (gb and de have a double-acute dead key, hu a key).
            let named = error?.message.dropLast().split(separator: ":").last?.split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            } ?? []
            #expect(named.count >= 3 && !named.contains("us"), "\(error?.message ?? "")")
            for name in named { #expect(try KeyboardLayout.resolve(name).keystrokes(for: "ő") != nil, "\(name)") }
            let secret = await expectError(.usage) {
                try await hid.type("ő", options: TypingOptions(layout: try KeyboardLayout.resolve("us"), secret: true))
            }
            #expect(secret?.message.contains("ő") == false)
            #expect(secret?.message.contains("layouts that can") == false, "a secret's character is not hinted at")
            try await Task.sleep(for: .milliseconds(100))
            #expect(sentReports(simulator, .keyboard).isEmpty)
            await hid.close()
        }
    }
}
