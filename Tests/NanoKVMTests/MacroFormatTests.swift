import NanoKVM
import Testing

@Suite(.timeLimit(.minutes(1))) struct MacroFormatTests {
    static let sample = """
        # login on the console
        0 type "root\\n"
        0.5 key enter # twice, to be sure
        1.25 key_down ctrl+alt
        1.3 key_up ctrl+alt

        2 move 0.5 0.25
        2.000001 move_by -10 127
        3 mouse_down left
        3.1 mouse_up left
        4 scroll -3
        4 type "tab\\there \\"quoted\\" # not a comment é"

        """

    @Test func parsesEveryStep() throws {
        let macro = try Macro.parse(Self.sample)
        let steps = macro.steps
        #expect(steps.count == 10)
        #expect(steps[0].action == .type("root\n"))
        #expect(steps[1].action == .key("enter") && steps[1].offset == 0.5)
        #expect(steps[2].action == .keyDown("ctrl+alt"))
        #expect(steps[4].action == .move(x: 0.5, y: 0.25))
        #expect(steps[5].action == .moveBy(dx: -10, dy: 127) && steps[5].offset == 2.000001)
        #expect(steps[8].action == .scroll(-3))
        #expect(steps[9].action == .type("tab\there \"quoted\" # not a comment é"))
        #expect(macro.duration == 4)
    }

    @Test("A recording names the layout its type steps were typed with, else the device's")
    func recordingsNameTheirLayout() throws {
        let records = [
            HIDCallRecord(time: 10, steps: [HIDTimedStep(0, .type("hunter2", TypingOptions(layout: .fr, secret: true)))]),
            HIDCallRecord(time: 10.25, steps: [HIDTimedStep(0, .type("@", TypingOptions(layout: .de)))]),
            HIDCallRecord(time: 10.5, steps: [HIDTimedStep(0, .key(try KeyChord(parsing: "enter")))]),
        ]
        let macro = Macro.recorded(records, start: 10, defaultLayout: "us")
        let text = macro.text()
        // The secret step is not recorded, nor does its layout count.
        #expect(text.hasPrefix("# layout: de\n0.25 type \"@\"\n"), "\(text.debugDescription)")
        let back = try Macro.parse(text)
        #expect(back.layout == "de" && back == macro && back.steps.count == 2)
        // Nothing typed: the device's layout; nothing known: no line.
        let keysOnly = Macro.recorded(Array(records.suffix(1)), start: 10, defaultLayout: "ch(fr)")
        #expect(keysOnly.text().hasPrefix("# layout: ch(fr)\n0.5 key "), "\(keysOnly.text().debugDescription)")
        #expect(Macro.recorded(Array(records.suffix(1)), start: 10).layout == nil)
    }

    @Test func writesBackByteForByte() throws {
        let macro = try Macro.parse(Self.sample)
        #expect(macro.text() == Self.sample)
        #expect(try Macro.parse(macro.text()) == macro)
    }

    @Test func builtMacrosRoundTrip() throws {
        var macro = Macro()
        macro.append(.type("a\u{1}b\\c\"d\n"), at: 0)
        macro.append(.key("shift+F10"), at: 0.1 + 0.2)  // 0.30000000000000004
        macro.append(.move(x: 1.0 / 3.0, y: 1), at: 12.5)
        let text = macro.text()
        let back = try Macro.parse(text)
        #expect(back.steps.count == 3)
        #expect(back.steps[0].action == .type("a\u{1}b\\c\"d\n"))
        #expect(back.steps[1].offset == 0.3, "offsets keep microsecond precision: \(text)")
        #expect(back.text() == text)
    }

    @Test(arguments: [
        ("x key enter", 1, "time offset"),
        ("0 key", 1, "one key spec"),
        ("0 frobnicate", 1, "unknown step 'frobnicate'"),
        ("1 key a\n0.5 key b", 2, "earlier than the step before"),
        ("0 type hello", 1, "quoted string"),
        ("0 type \"unterminated", 1, "unterminated"),
        ("0 move 2 0", 1, "fractions 0..1"),
        ("0 mouse_down sideways", 1, "left, right, middle, back or forward"),
        ("0 scroll 1.5", 1, "integer"),
    ])
    func badLinesNameTheirLine(text: String, line: Int, message: String) {
        do {
            _ = try Macro.parse(text, name: "m.kvm-macro")
            Issue.record("\(text) parsed")
        } catch {
            #expect(error.kind == .usage)
            #expect(error.message.hasPrefix("m.kvm-macro:\(line): "), "\(error.message)")
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    @Test func unicodeEscapesAreRead() throws {
        #expect(try Macro.parse(#"0 type "\u00e9\ud83d\ude00""#).steps.first?.action == .type("é😀"))
    }

    @Test func keySpecsAreCheckedWhenAsked() {
        let check: MacroKeySpecCheck = { $0 == "nosuchkey" ? "unknown key 'nosuchkey'" : nil }
        #expect(throws: NanoKVMError.self) { try Macro.parse("0 key nosuchkey", checkKey: check) }
        #expect((try? Macro.parse("0 key enter", checkKey: check)) != nil)
    }

    @Test func importsPiKVMScripts() throws {
        let json = """
            [
              {"event_type": "key", "event": {"key": "KeyA", "state": true}},
              {"event_type": "delay", "event": {"millis": 120}},
              {"event_type": "key", "event": {"key": "KeyA", "state": false}},
              {"event_type": "delay", "event": {"millis": 80}},
              {"event_type": "mouse_move", "event": {"to": {"x": 0, "y": -32768}}},
              {"event_type": "mouse_button", "event": {"button": "left", "state": true}},
              {"event_type": "mouse_button", "event": {"button": "up", "state": false}},
              {"event_type": "mouse_wheel", "event": {"delta": {"x": 0, "y": -5}}},
              {"event_type": "mouse_relative", "event": {"delta": [{"x": 3, "y": -4}], "squash": true}},
              {"event_type": "print", "event": {"text": "hello\\n"}}
            ]
            """
        let macro = try Macro.importPiKVM(json)
        let steps = macro.steps
        #expect(steps.map(\.action) == [
            .keyDown("KeyA"), .keyUp("KeyA"), .move(x: 32768.0 / 65535.0, y: 0), .mouseDown("left"), .mouseUp("back"),
            .scroll(1), .moveBy(dx: 3, dy: -4), .type("hello\n"),
        ])
        #expect(steps[1].offset == 0.12)
        #expect(abs(steps[2].offset - 0.2) < 1e-9)
    }

    @Test func piKVMErrorsNameWhatCannotBeConverted() {
        let json = #"[{"event_type": "delay", "event": {"millis": 5}}, {"event_type": "atx_button", "event": {"button": "power"}}]"#
        do {
            _ = try Macro.importPiKVM(json)
            Issue.record("converted an ATX button")
        } catch {
            #expect(error.message == "script.json: event 2: 'atx_button' cannot be converted to a keyboard/mouse macro")
        }
        #expect(throws: NanoKVMError.self) { try Macro.importPiKVM("{}") }
        #expect(throws: NanoKVMError.self) { try Macro.importPiKVM("not json") }
    }

    @Test func importsDuckyScript() throws {
        let ducky = """
            REM open a terminal
            DEFAULT_DELAY 100
            CTRL ALT t
            DELAY 500
            STRING echo hi
            ENTER
            GUI r
            F5
            STRINGLN ok
            REPEAT 2
            """
        let macro = try Macro.importDuckyScript(ducky, keyDelay: 0)
        #expect(macro.steps.map(\.action) == [
            .key("ctrl+alt+KeyT"), .type("echo hi"), .key("enter"), .key("meta+KeyR"), .key("F5"), .type("ok\n"),
            .type("ok\n"), .type("ok\n"),
        ])
        #expect(macro.steps[1].offset == 0.6)  // 100 after CTRL ALT t, then DELAY 500
    }

    @Test func duckyScriptErrorsNameTheLine() {
        do {
            _ = try Macro.importDuckyScript("STRING a\nIF TRUE\n")
            Issue.record("converted IF")
        } catch {
            #expect(error.message == "payload.txt:2: 'IF' (DuckyScript 3) cannot be converted")
        }
        #expect(throws: NanoKVMError.self) { try Macro.importDuckyScript("BLORP") }
        #expect(throws: NanoKVMError.self) { try Macro.importDuckyScript("DELAY soon") }
    }
}
