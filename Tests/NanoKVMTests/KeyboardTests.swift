import NanoKVM
import NanoKVMSimulator
import Synchronization
import Testing

/// A deterministic text of `count` characters the layout can type: letters, digits, the
/// layout's punctuation and accented characters (dead keys included), spaces, newlines, tabs.
func typingSample(_ layout: KeyboardLayout, count: Int, seed: UInt64 = 0x5EED) -> String {
    let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    let digits = Array("0123456789")
    let candidates = Array("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~£€§°²µ¬´¨äöüÄÖÜßéèçàùâêîôûÂÊÎÔÛáíóúÁÉÍÓÚëïÿÀÈÌÒÙ")
    let punctuation = candidates.filter { layout.keystrokes(for: $0) != nil }
    var state = seed
    func next(_ bound: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(bound))
    }
    var text = ""
    while text.count < count {
        let roll = next(100)
        switch roll {
        case 0..<45: text.append(letters[next(letters.count)])
        case 45..<55: text.append(digits[next(digits.count)])
        case 55..<80: text.append(punctuation[next(punctuation.count)])
        case 80..<92: text.append(" ")
        case 92..<97: text.append("\n")
        default: text.append("\t")
        }
    }
    return text
}

/// Waits until the simulator has received every report written so far (the count stops
/// changing), then clears its log.
func clearReportsWhenQuiet(_ simulator: NanoKVMSimulator) async {
    var last = -1
    var stableSince = ContinuousClock.now
    let end = ContinuousClock.now + .seconds(3)
    while ContinuousClock.now < end {
        let count = simulator.reports.count
        if count != last {
            last = count
            stableSince = .now
        } else if ContinuousClock.now - stableSince > .milliseconds(100) {
            break
        }
        try? await Task.sleep(for: .milliseconds(10))
    }
    simulator.clearReports()
}

func sentReports(_ simulator: NanoKVMSimulator, _ kind: SimulatorReport.Kind? = nil) -> [[UInt8]] {
    simulator.reports.filter { $0.source == .webSocket && (kind == nil || $0.kind == kind) }.map(\.bytes)
}

@Suite("Keyboard: names, layouts, typing, chords", .timeLimit(.minutes(1)))
struct KeyboardTests {
    // MARK: Offline

    @Test("Key names: KeyboardEvent.code (any case), aliases, chords; unknown names raise usage")
    func names() throws {
        let chord = try KeyChord(parsing: "ctrl+alt+delete")
        #expect(chord.components == [.modifier(0x01), .modifier(0x04), .key(0x4C)])
        #expect(chord.modifiers == 0x05 && chord.keys == [0x4C])
        #expect(try KeyChord(parsing: "CONTROLLEFT + AltLeft + Del") == chord)
        #expect(try KeyChord(parsing: "shift+F10").components == [.modifier(0x02), .key(0x43)])
        #expect(try KeyChord(parsing: "KeyA").components == [.key(0x04)])
        #expect(try KeyChord(parsing: "a").components == [.key(0x04)])
        #expect(try KeyChord(parsing: "win").components == [.modifier(0x08)])
        #expect(try KeyChord(parsing: "super").components == [.modifier(0x08)])
        #expect(try KeyChord(parsing: "altgr").components == [.modifier(0x40)])
        #expect(try KeyChord(parsing: "enter").components == [.key(0x28)])
        #expect(try KeyChord(parsing: "return").components == [.key(0x28)])
        #expect(try KeyChord(parsing: "esc").components == [.key(0x29)])
        #expect(try KeyChord(parsing: "bksp").components == [.key(0x2A)])
        #expect(try KeyChord(parsing: "up").components == [.key(0x52)])
        #expect(try KeyChord(parsing: "F13").components == [.key(0x68)])
        #expect(try KeyChord(parsing: "f24").components == [.key(0x73)])
        #expect(try KeyChord(parsing: "Numpad0").components == [.key(0x62)])
        #expect(try KeyChord(parsing: "NumpadEnter").components == [.key(0x58)])
        #expect(try KeyChord(parsing: "AudioVolumeUp").components == [.key(0x80)])
        #expect(try KeyChord(parsing: "IntlBackslash").components == [.key(0x64)])
        #expect(try KeyChord(parsing: "Lang1").components == [.key(0x90)])
        #expect(chord.description == "ControlLeft+AltLeft+Delete")
        for bad in ["ctrl+foo", "", "ctrl+", "+a", "ctrl++"] {
            #expect(KeyChord.problem(in: bad) != nil, "\(bad)")
            #expect(throws: NanoKVMError.self) { try KeyChord(parsing: bad) }
        }
        // Every code of the table parses to its usage.
        for (code, usage) in KeyNames.codes {
            let parsed = try KeyChord(parsing: code.uppercased())
            #expect(parsed.components.first?.usage == usage, "\(code)")
        }
    }

    @Test("Every character of every layout round-trips through the host-side decoder")
    func layoutsRoundTrip() throws {
        for layout in KeyboardLayout.all {
            var typed = 0
            for character in layout.strokes.keys.sorted() + Array("âêîôûÂÊÎÔÛáéíóúýàèìòùëïöüÿ^´`¨") {
                guard let strokes = layout.keystrokes(for: character) else { continue }
                var pending = KeyboardLayout.DeadKeyState()
                var text = ""
                for stroke in strokes {
                    text += layout.text(usage: stroke.usage, modifiers: stroke.modifiers, pending: &pending)
                }
                #expect(text == String(character), "\(layout.name): \(character) → \(text)")
                #expect(pending.accent == nil)
                typed += 1
            }
            #expect(typed > 90, "\(layout.name)")
        }
        // Dead keys: ^ on de needs Space after it; ê is ^ then e; fr ^ is AltGr+9 (not dead).
        #expect(KeyboardLayout.de.keystrokes(for: "^") == [KeyStroke(usage: 0x35), KeyStroke(usage: 0x2C)])
        #expect(KeyboardLayout.de.keystrokes(for: "ê") == [KeyStroke(usage: 0x35), KeyStroke(usage: 0x08)])
        #expect(KeyboardLayout.de.keystrokes(for: "É") == [KeyStroke(usage: 0x2E), KeyStroke(usage: 0x08, modifiers: 0x02)])
        #expect(KeyboardLayout.fr.keystrokes(for: "^") == [KeyStroke(usage: 0x26, modifiers: 0x40)])
        #expect(KeyboardLayout.fr.keystrokes(for: "ë") == [KeyStroke(usage: 0x2F, modifiers: 0x02), KeyStroke(usage: 0x08)])
        #expect(KeyboardLayout.de.keystrokes(for: "@") == [KeyStroke(usage: 0x14, modifiers: 0x40)])
        #expect(KeyboardLayout.us.keystrokes(for: "é") == nil)
        #expect(KeyboardLayout.us.keystrokes(for: "\r\n") == [KeyStroke(usage: 0x28)])
        // A dead key before a character it does not compose with prints both.
        var pending = KeyboardLayout.DeadKeyState()
        #expect(KeyboardLayout.de.text(usage: 0x35, modifiers: 0, pending: &pending) == "")
        #expect(KeyboardLayout.de.text(usage: 0x1B, modifiers: 0, pending: &pending) == "^x")
    }

    @Test("The compiler: chords press in order and release in reverse (binary), all at once (JSON)")
    func compiledChords() throws {
        let current = FirmwareProfile(versionString: "2.5.1", version: FirmwareVersion(2, 5, 1), isMultiUser: true)
        var compiler = HIDCompiler(profile: current)
        try compiler.append(.key(try KeyChord(parsing: "ctrl+alt+delete")))
        #expect(compiler.messages.map(\.message) == [
            .keyboard(KeyboardReport(modifiers: 0x01)), .keyboard(KeyboardReport(modifiers: 0x05)),
            .keyboard(KeyboardReport(modifiers: 0x05, keys: [0x4C])), .keyboard(KeyboardReport(modifiers: 0x05)),
            .keyboard(KeyboardReport(modifiers: 0x01)), .keyboard(.released),
        ])
        for (message, expected) in zip(compiler.messages, [0, 0.01, 0.02, 0.03, 0.04, 0.05]) {
            #expect(abs(message.offset - expected) < 1e-9)
        }
        #expect(compiler.state.isReleased)
        let legacy = FirmwareProfile(versionString: "2.0.9", version: FirmwareVersion(2, 0, 9), isMultiUser: false)
        var old = HIDCompiler(profile: legacy)
        try old.append(.key(try KeyChord(parsing: "ctrl+alt+delete")))
        #expect(old.messages.map(\.message) == [
            .legacy(.keyboard(usage: 0xE0, ctrl: 1, shift: 0, alt: 0, meta: 0)),
            .legacy(.keyboard(usage: 0xE2, ctrl: 1, shift: 0, alt: 1, meta: 0)),
            .legacy(.keyboard(usage: 0x4C, ctrl: 1, shift: 0, alt: 1, meta: 0)),
            .legacy(.keyboard(usage: 0, ctrl: 0, shift: 0, alt: 0, meta: 0)),
        ])
        // Untypeable text: usage, and nothing compiled.
        var typing = HIDCompiler(profile: current)
        #expect(throws: NanoKVMError.self) { try typing.append(.type("abc€", TypingOptions(layout: .us))) }
        #expect(typing.messages.isEmpty)
        // Keys beyond the gadget's range are refused before sending.
        #expect(throws: NanoKVMError.self) { try typing.append(.key(try KeyChord(parsing: "MediaPlayPause"))) }
        var oldF13 = HIDCompiler(profile: legacy)
        #expect(throws: NanoKVMError.self) { try oldF13.append(.key(try KeyChord(parsing: "F13"))) }
    }

    // MARK: Against the simulator

    @Test("Typing 1000 characters yields exactly that text, every layout", arguments: bothGenerations)
    func typeEveryLayout(generation: SimulatorGeneration) async throws {
        for layout in KeyboardLayout.all {
            try await withDevice(generation, configure: { $0.hostLayout = layout }) { simulator, client in
                let hid = client.makeHIDController()
                let text = typingSample(layout, count: 1000, seed: UInt64(layout.name.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
                let before = simulator.transcript
                let playback = try await hid.type(text, options: TypingOptions(layout: layout, delay: 0))
                #expect(playback.count >= 2000)
                #expect(await eventually(10) { simulator.transcript.count >= before.count + text.count })
                let after = simulator.transcript
                #expect(after == before + text, "\(layout.name)/\(generation): typed text differs")
                if after != before + text {
                    let got = Array(after.dropFirst(before.count))
                    let want = Array(text)
                    if let index = zip(got, want).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                        Issue.record("first difference at \(index): got \(String(got[index...].prefix(10)).debugDescription) want \(String(want[index...].prefix(10)).debugDescription)")
                    }
                }
                #expect(await eventually { simulator.input.pressedKeys.isEmpty && simulator.input.modifiers == 0 }, "\(simulator.input.pressedKeys)")
                await hid.close()
            }
        }
    }

    @Test("Repeated characters get a release in between; opts.delay spaces the presses", arguments: bothGenerations)
    func repeatedAndDelay(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            await clearReportsWhenQuiet(simulator)
            let playback = try await hid.type("aaA", options: TypingOptions(delay: 0.05))
            #expect(await eventually { sentReports(simulator).count >= 6 })
            #expect(sentReports(simulator) == [
                [0, 0, 4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0],
                [2, 0, 4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0],
            ])
            #expect(simulator.transcript.hasSuffix("aaA"))
            // Presses 50 ms apart, releases halfway, against absolute deadlines.
            let deadlines = playback.timings.map { $0.deadline - playback.started }
            for (index, deadline) in deadlines.enumerated() {
                #expect(abs(deadline - Double(index) * 0.025) < 1e-9)
            }
            for timing in playback.timings { #expect(timing.lateness >= 0 && timing.lateness < 0.05) }
            await hid.close()
        }
    }

    @Test("ctrl+alt+delete: press ctrl, alt, delete, release in reverse order, byte for byte", arguments: bothGenerations)
    func ctrlAltDelete(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            await clearReportsWhenQuiet(simulator)
            try await hid.key("ctrl+alt+delete")
            let expected: [[UInt8]] = generation == .current
                ? [[0x01, 0, 0, 0, 0, 0, 0, 0], [0x05, 0, 0, 0, 0, 0, 0, 0], [0x05, 0, 0x4C, 0, 0, 0, 0, 0],
                   [0x05, 0, 0, 0, 0, 0, 0, 0], [0x01, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]
                // JSON protocol: one key per report (a modifier's own usage), released all at once.
                : [[0x01, 0, 0xE0, 0, 0, 0, 0, 0], [0x05, 0, 0xE2, 0, 0, 0, 0, 0], [0x05, 0, 0x4C, 0, 0, 0, 0, 0],
                   [0, 0, 0, 0, 0, 0, 0, 0]]
            #expect(await eventually { sentReports(simulator).count >= expected.count })
            #expect(sentReports(simulator) == expected)
            // Several chords in one call, in order.
            await clearReportsWhenQuiet(simulator)
            try await hid.key("shift+F10", "enter")
            let second: [[UInt8]] = generation == .current
                ? [[0x02, 0, 0, 0, 0, 0, 0, 0], [0x02, 0, 0x43, 0, 0, 0, 0, 0], [0x02, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0],
                   [0, 0, 0x28, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]
                : [[0x02, 0, 0xE1, 0, 0, 0, 0, 0], [0x02, 0, 0x43, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0],
                   [0, 0, 0x28, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]
            #expect(await eventually { sentReports(simulator).count >= second.count })
            #expect(sentReports(simulator) == second)
            await hid.close()
        }
    }

    @Test("Unknown key names and untypeable characters raise usage before anything is sent", arguments: bothGenerations)
    func nothingSentOnUsage(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            await expectError(.usage) { try await hid.key("enter", "ctrl+nosuchkey") }
            let error = await expectError(.usage) { try await hid.type("hello ✓ world") }
            #expect(error?.message.contains("✓") == true)
            let secret = await expectError(.usage) { try await hid.type("pa§§word", options: TypingOptions(layout: .us, secret: true)) }
            #expect(secret?.message.contains("§") == false)
            #expect(secret?.message.contains("pa") == false)
            await expectError(.usage) { try await hid.type("x", options: TypingOptions(delay: -1)) }
            #expect(sentReports(simulator).isEmpty)
            // Not even the WebSocket was opened.
            #expect(!simulator.requestLog.contains { $0.path == "/api/ws" })
            await hid.close()
        }
    }

    @Test("key_down / key_up / hold / release_all", arguments: bothGenerations)
    func holdAndRelease(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            try await hid.keyDown("shift")
            try await hid.type("ab")
            #expect(await eventually { simulator.transcript.hasSuffix("AB") })
            #expect(hid.state.modifiers == 0x02)
            #expect(await eventually { simulator.input.modifiers == 0x02 })
            try await hid.keyUp("shift")
            #expect(await eventually { simulator.input.modifiers == 0 })
            // hold releases even when the body throws.
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await hid.hold("ctrl+shift") { () async throws -> Void in
                    #expect(await eventually { simulator.input.modifiers == 0x03 })
                    throw Boom()
                }
            }
            #expect(await eventually { simulator.input.modifiers == 0 && simulator.input.pressedKeys.isEmpty })
            #expect(hid.state.isReleased)
            let value = try await hid.hold("KeyX") { () async throws -> Int in
                #expect(await eventually { simulator.input.pressedKeys == [0x1B] })
                return 7
            }
            #expect(value == 7)
            #expect(await eventually { simulator.input.pressedKeys.isEmpty })
            // release_all: an all-keys-up keyboard report and a no-buttons mouse report.
            try await hid.keyDown("ctrl+KeyA")
            try await hid.mouseDown(.left)
            await clearReportsWhenQuiet(simulator)
            try await hid.releaseAll()
            #expect(await eventually { sentReports(simulator).count >= 2 })
            let reports = simulator.reports.filter { $0.source == .webSocket }
            #expect(reports.first?.kind == .keyboard && reports.first?.bytes == [0, 0, 0, 0, 0, 0, 0, 0])
            #expect(reports.contains { $0.kind == .relativeMouse && $0.bytes == [0, 0, 0, 0] })
            #expect(simulator.input.buttons == 0 && simulator.input.modifiers == 0 && simulator.input.pressedKeys.isEmpty)
            await hid.close()
        }
    }

    @Test("A WebSocket drop in the middle of typing: the text is still exact, no error", arguments: bothGenerations)
    func dropWhileTyping(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            let text = typingSample(.us, count: 300, seed: 99)
            let before = simulator.transcript
            // Dropped after 201 reports: in the middle of a key (between press and release).
            simulator.inject(.dropWebSocketsAfter(reports: 201))
            let playback = try await hid.type(text, options: TypingOptions(delay: 0.01))
            #expect(playback.reconnects >= 1)
            #expect(hid.reconnectCount >= 1)
            #expect(await eventually(5) { simulator.transcript.count >= before.count + text.count })
            #expect(simulator.transcript == before + text)
            #expect(simulator.requestLog.filter { $0.path == "/api/ws" && $0.status == 101 }.count >= 2)
            await hid.close()
        }
    }

    @Test("An idle session outlives the device's heartbeat deadline")
    func idleHeartbeat() async throws {
        try await withDevice(.current, configure: { $0.heartbeatDeadline = .milliseconds(1000) }) { simulator, client in
            let hid = client.makeHIDController(HIDControllerOptions(heartbeatInterval: .milliseconds(250)))
            try await hid.type("a")
            try await Task.sleep(for: .milliseconds(2600))
            #expect(hid.isConnected)
            try await hid.type("b")
            #expect(hid.reconnectCount == 0)
            #expect(simulator.requestLog.filter { $0.path == "/api/ws" }.count == 1)
            #expect(await eventually { simulator.transcript.hasSuffix("ab") })
            await hid.close()
            // Without heartbeats the device drops it (and the controller reconnects for the next call).
            let silent = client.makeHIDController(HIDControllerOptions(heartbeatInterval: .zero))
            try await silent.type("c")
            try await Task.sleep(for: .milliseconds(2600))
            try await silent.type("d")
            #expect(silent.reconnectCount >= 1)
            #expect(await eventually { simulator.transcript.hasSuffix("abcd") })
            await silent.close()
        }
    }

    @Test("Cancelling a typing task while keys are held leaves nothing pressed", arguments: bothGenerations)
    func cancelTyping(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            try await hid.keyDown("shift")
            let task = Task { try await hid.type(String(repeating: "abcdefgh", count: 100), options: TypingOptions(delay: 0.01)) }
            #expect(await eventually { simulator.transcript.hasSuffix("ABCD") })
            task.cancel()
            let result = await task.result
            if case .failure(let error) = result {
                #expect((error as? NanoKVMError)?.kind == .cancelled)
            } else {
                Issue.record("the typing task was not cancelled")
            }
            #expect(await eventually { simulator.input.modifiers == 0 && simulator.input.pressedKeys.isEmpty })
            #expect(hid.state.isReleased)
            // The controller still works afterwards.
            try await hid.type("z")
            #expect(await eventually { simulator.transcript.hasSuffix("z") })
            await hid.close()
        }
    }

    @Test("Close releases what is held; later calls raise usage", arguments: bothGenerations)
    func closeReleases(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            try await hid.keyDown("ctrl+alt")
            try await hid.mouseDown(.right)
            #expect(await eventually { simulator.input.modifiers == 0x05 && simulator.input.buttons == 0x02 })
            await hid.close()
            #expect(await eventually { simulator.input.modifiers == 0 && simulator.input.buttons == 0 })
            #expect(!hid.isConnected)
            await expectError(.usage) { try await hid.key("a") }
        }
    }

    @Test("Calls from concurrent tasks are played one after the other")
    func serialized() async throws {
        try await withDevice(.current) { simulator, client in
            let hid = client.makeHIDController()
            let before = simulator.transcript
            async let first = hid.type("1111111111", options: TypingOptions(delay: 0.002))
            async let second = hid.type("2222222222", options: TypingOptions(delay: 0.002))
            _ = try await (first, second)
            #expect(await eventually { simulator.transcript.count == before.count + 20 })
            let typed = String(simulator.transcript.dropFirst(before.count))
            #expect(typed == "1111111111" + "2222222222" || typed == "2222222222" + "1111111111")
            await hid.close()
        }
    }

    @Test("Keyboard LEDs pushed by the device are tracked")
    func leds() async throws {
        try await withDevice(.current) { simulator, client in
            let hid = client.makeHIDController()
            try await hid.key("CapsLock")
            #expect(await eventually { hid.keyboardLEDs?.capsLock == true })
            #expect(simulator.input.capsLock)
            try await hid.key("CapsLock")
            #expect(await eventually { hid.keyboardLEDs?.capsLock == false })
            await hid.close()
        }
    }

    @Test("Timed sequences: absolute deadlines, speed, loops, recording, and release on failure")
    func sequences() async throws {
        try await withDevice(.current) { simulator, client in
            let hid = client.makeHIDController()
            let records = RecordBox()
            let observer = hid.addObserver { records.append($0) }
            let steps = [
                HIDTimedStep(0, .keyDown(try KeyChord(parsing: "shift"))), HIDTimedStep(0.05, .type("ab", TypingOptions(delay: 0.02))),
                HIDTimedStep(0.15, .keyUp(try KeyChord(parsing: "shift"))), HIDTimedStep(0.2, .key(try KeyChord(parsing: "enter"))),
            ]
            let playback = try await hid.play(steps, speed: 2, loops: 2)
            #expect(await eventually { simulator.transcript.hasSuffix("AB\nAB\n") })
            // Second loop starts where the first ended; speed 2 halves the offsets.
            let offsets = playback.timings.map { $0.deadline - playback.started }
            #expect(abs(offsets[1] - 0.025) < 1e-6)
            #expect(offsets.last.map { $0 > 0.2 && $0 < 0.3 } == true)
            for timing in playback.timings { #expect(timing.lateness < 0.05) }
            #expect(records.count == 1)
            _ = try await hid.type("s3cret", options: TypingOptions(secret: true))
            #expect(records.count == 1)
            hid.removeObserver(observer)
            // A failing step in the middle: everything checked first, nothing sent.
            await clearReportsWhenQuiet(simulator)
            await expectError(.usage) {
                try await hid.play([HIDTimedStep(0, .keyDown(try KeyChord(parsing: "ctrl"))), HIDTimedStep(0.01, .move(x: 2, y: 0))])
            }
            #expect(sentReports(simulator).isEmpty)
            await hid.close()
        }
    }
}

final class RecordBox: Sendable {
    private let records = Mutex<[HIDCallRecord]>([])
    func append(_ record: HIDCallRecord) { records.withLock { $0.append(record) } }
    var count: Int { records.withLock { $0.count } }
}
