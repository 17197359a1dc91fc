// Macros from other tools: PiKVM's web recorder (`script.json`) and Hak5 DuckyScript text.
// What has no equivalent here raises `usage` naming it (and where it is).

extension Macro {
    /// Converts PiKVM's recorder export: a JSON list of `{"event_type": …, "event": {…}}`
    /// (delay, key, mouse_button, mouse_move, mouse_relative, mouse_wheel, print).
    public static func importPiKVM(_ text: String, name: String = "script.json") throws(NanoKVMError) -> Macro {
        let root: JSONValue
        do throws(JSONSyntaxError) { root = try JSONValue.parse(text) } catch {
            throw NanoKVMError(.usage, "\(name): not JSON: \(error.description)")
        }
        guard let events = root.arrayValue else { throw NanoKVMError(.usage, "\(name): expected a list of events") }
        var macro = Macro()
        var time = 0.0
        for (index, item) in events.enumerated() {
            let number = index + 1
            func fail(_ message: String) -> NanoKVMError { NanoKVMError(.usage, "\(name): event \(number): \(message)") }
            guard let type = item["event_type"]?.stringValue, let event = item["event"], event.objectValue != nil else {
                throw fail("not an {event_type, event} object")
            }
            switch type {
            case "delay":
                guard let millis = event["millis"]?.intValue, millis >= 0 else { throw fail("delay needs millis >= 0") }
                time += Double(millis) / 1000
            case "key":
                guard let code = event["key"]?.stringValue, let state = event["state"]?.boolValue else {
                    throw fail("key needs a key code and a state")
                }
                macro.append(state ? .keyDown(code) : .keyUp(code), at: time)
            case "mouse_button":
                guard let button = event["button"]?.stringValue, let state = event["state"]?.boolValue else {
                    throw fail("mouse_button needs a button and a state")
                }
                // kvmd names the extra buttons after the browser's: 3 "up" (back), 4 "down" (forward).
                let mapped = ["up": "back", "down": "forward"][button] ?? button
                guard MacroAction.mouseButtons.contains(mapped) else { throw fail("unknown mouse button '\(button)'") }
                macro.append(state ? .mouseDown(mapped) : .mouseUp(mapped), at: time)
            case "mouse_move":
                guard let x = event["to"]?["x"]?.intValue, let y = event["to"]?["y"]?.intValue else {
                    throw fail("mouse_move needs to.x and to.y")
                }
                // kvmd's absolute range is -32768..32767 across the screen.
                func fraction(_ v: Int) -> Double { min(1, max(0, (Double(v) + 32768) / 65535)) }
                macro.append(.move(x: fraction(x), y: fraction(y)), at: time)
            case "mouse_relative":
                guard let deltas = event["delta"]?.arrayValue else { throw fail("mouse_relative needs a delta list") }
                for delta in deltas {
                    guard let dx = delta["x"]?.intValue, let dy = delta["y"]?.intValue else { throw fail("bad relative delta") }
                    macro.append(.moveBy(dx: dx, dy: dy), at: time)
                }
            case "mouse_wheel":
                guard let dy = event["delta"]?["y"]?.intValue else { throw fail("mouse_wheel needs delta.y") }
                // kvmd sends HID wheel values (positive = up); here positive scrolls down.
                if dy != 0 { macro.append(.scroll(dy > 0 ? -1 : 1), at: time) }
                if let dx = event["delta"]?["x"]?.intValue, dx != 0 {
                    throw fail("horizontal wheel movement cannot be converted")
                }
            case "print":
                guard let printed = event["text"]?.stringValue else { throw fail("print needs text") }
                if let keymap = event["keymap"]?.stringValue, !keymap.hasPrefix("en-us") {
                    throw fail("print with keymap '\(keymap)' cannot be converted (play the macro with the matching layout instead)")
                }
                macro.append(.type(printed), at: time)
            case "atx_button", "gpio_switch", "gpio_pulse", "delay_random", "mouse_move_random":
                throw fail("'\(type)' cannot be converted to a keyboard/mouse macro")
            default:
                throw fail("unknown event type '\(type)'")
            }
        }
        return macro
    }

    /// Converts DuckyScript 1.0 (REM, DELAY, DEFAULT_DELAY, STRING, STRINGLN, REPEAT, key names
    /// and modifier combinations such as `CTRL ALT DELETE`). Each command takes `keyDelay`
    /// seconds (keystrokes need some time; Ducky devices type as fast as USB allows).
    public static func importDuckyScript(_ text: String, name: String = "payload.txt", keyDelay: Double = 0.02) throws(NanoKVMError) -> Macro {
        var macro = Macro()
        var time = 0.0
        var defaultDelay = 0.0
        var lastCommand: [MacroAction] = []
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        for (index, rawLine) in lines.enumerated() {
            let number = index + 1
            func fail(_ message: String) -> NanoKVMError { NanoKVMError(.usage, "\(name):\(number): \(message)") }
            var line = rawLine
            if line.hasSuffix("\r") { line.removeLast() }
            let trimmed = line.trimmingSpaces
            if trimmed.isEmpty { continue }
            let command = trimmed.split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
            let argument = trimmed.count > command.count ? String(trimmed.dropFirst(command.count + 1)) : ""
            var actions: [MacroAction] = []
            switch command.uppercased() {
            case "REM":
                continue
            case "DELAY":
                guard let millis = Int(argument.trimmingSpaces), millis >= 0 else { throw fail("DELAY takes milliseconds") }
                time += Double(millis) / 1000
                continue
            case "DEFAULT_DELAY", "DEFAULTDELAY":
                guard let millis = Int(argument.trimmingSpaces), millis >= 0 else { throw fail("\(command) takes milliseconds") }
                defaultDelay = Double(millis) / 1000
                continue
            case "STRING":
                actions = [.type(argument)]
            case "STRINGLN":
                actions = [.type(argument + "\n")]
            case "REPEAT", "REPLAY":
                guard let count = Int(argument.trimmingSpaces), count > 0, count <= 10_000 else { throw fail("REPEAT takes a count") }
                guard !lastCommand.isEmpty else { throw fail("REPEAT with nothing before it") }
                for _ in 0..<count {
                    for action in lastCommand {
                        macro.append(action, at: time)
                        time += keyDelay
                    }
                    time += defaultDelay
                }
                continue
            default:
                // A key or a combination: modifiers and keys separated by spaces or dashes.
                let parts = trimmed.split(whereSeparator: { $0 == " " || $0 == "-" }).map(String.init)
                var names: [String] = []
                for part in parts {
                    guard let key = duckyKey(part) else {
                        if duckyUnsupported.contains(part.uppercased()) {
                            throw fail("'\(part)' (DuckyScript 3) cannot be converted")
                        }
                        throw fail("unknown DuckyScript command or key '\(part)'")
                    }
                    names.append(key)
                }
                actions = [.key(names.joined(separator: "+"))]
            }
            for action in actions {
                macro.append(action, at: time)
                time += keyDelay
            }
            time += defaultDelay
            lastCommand = actions
        }
        return macro
    }

    /// DuckyScript key names → KeyboardEvent codes / kvmlua aliases.
    static func duckyKey(_ word: String) -> String? {
        let upper = word.uppercased()
        let table: [String: String] = [
            "CTRL": "ctrl", "CONTROL": "ctrl", "ALT": "alt", "SHIFT": "shift", "GUI": "meta", "WINDOWS": "meta",
            "COMMAND": "meta", "ENTER": "enter", "RETURN": "enter", "ESC": "esc", "ESCAPE": "esc", "TAB": "tab",
            "SPACE": "space", "BACKSPACE": "backspace", "DELETE": "delete", "DEL": "delete", "INSERT": "insert",
            "HOME": "home", "END": "end", "PAGEUP": "pageup", "PAGEDOWN": "pagedown", "UP": "up", "UPARROW": "up",
            "DOWN": "down", "DOWNARROW": "down", "LEFT": "left", "LEFTARROW": "left", "RIGHT": "right",
            "RIGHTARROW": "right", "CAPSLOCK": "capslock", "NUMLOCK": "numlock", "SCROLLLOCK": "scrolllock",
            "PRINTSCREEN": "printscreen", "PAUSE": "pause", "BREAK": "pause", "MENU": "contextmenu", "APP": "contextmenu",
        ]
        if let known = table[upper] { return known }
        if upper.count >= 2, upper.hasPrefix("F"), let n = Int(upper.dropFirst()), (1...24).contains(n) { return "F\(n)" }
        if upper.count == 1, let c = upper.first {
            if c.isLetter, c.isASCII { return "Key\(c)" }
            if c.isNumber, c.isASCII { return "Digit\(c)" }
        }
        return nil
    }

    static let duckyUnsupported: Set<String> = [
        "VAR", "IF", "ELSE", "END_IF", "WHILE", "END_WHILE", "FUNCTION", "END_FUNCTION", "ATTACKMODE", "DEFINE",
        "WAIT_FOR_BUTTON_PRESS", "BUTTON_DEF", "LED_R", "LED_G", "LED_OFF", "HOLD", "RELEASE", "EXFIL", "RANDOM_LOWERCASE_LETTER",
    ]
}
