// Keyboard and mouse macros as data: a list of timed steps, and the `.kvm-macro` text format
// (../shared/lua-api.md, "Macros"): one step per line, `<offset seconds> <step>`, `#` starts a
// comment. Offsets are absolute from the start of the macro, so playback schedules every step
// against one monotonic deadline and never accumulates sleep errors.

/// One action of a macro.
public enum MacroAction: Sendable, Equatable {
    case keyDown(String)
    case keyUp(String)
    /// Press and release a chord (`ctrl+alt+delete`).
    case key(String)
    /// Type text with the layout the macro is played with.
    case type(String)
    /// Absolute move, fractions 0..1 of the screen.
    case move(x: Double, y: Double)
    /// Relative move in device units.
    case moveBy(dx: Int, dy: Int)
    case mouseDown(String)
    case mouseUp(String)
    /// Wheel notches; positive scrolls down.
    case scroll(Int)

    /// The step's keyword in the file.
    public var keyword: String {
        switch self {
        case .keyDown: return "key_down"
        case .keyUp: return "key_up"
        case .key: return "key"
        case .type: return "type"
        case .move: return "move"
        case .moveBy: return "move_by"
        case .mouseDown: return "mouse_down"
        case .mouseUp: return "mouse_up"
        case .scroll: return "scroll"
        }
    }

    public static let mouseButtons: Set<String> = ["left", "right", "middle", "back", "forward"]
}

/// A line of a macro file: a step at an offset, with an optional trailing comment, or a line
/// holding only a comment (or nothing), kept so that a file reads and writes back unchanged.
public struct MacroLine: Sendable, Equatable {
    /// Seconds from the start of the macro; nil for a comment-only or empty line.
    public var offset: Double?
    public var action: MacroAction?
    /// Text after `#` (without the `#`), if any.
    public var comment: String?

    public init(offset: Double, action: MacroAction, comment: String? = nil) {
        self.offset = offset
        self.action = action
        self.comment = comment
    }

    public init(comment: String?) {
        self.offset = nil
        self.action = nil
        self.comment = comment
    }
}

public struct Macro: Sendable, Equatable {
    public var lines: [MacroLine]

    public init(lines: [MacroLine] = []) { self.lines = lines }

    /// The steps, in order: (offset, action).
    public var steps: [(offset: Double, action: MacroAction)] {
        lines.compactMap { line in
            guard let offset = line.offset, let action = line.action else { return nil }
            return (offset, action)
        }
    }

    /// Seconds from the start to the last step.
    public var duration: Double { steps.last?.offset ?? 0 }

    public mutating func append(_ action: MacroAction, at offset: Double) {
        lines.append(MacroLine(offset: offset, action: action))
    }
}

// MARK: Reading

/// Checks a key spec (`ctrl+alt+delete`) when a macro is read; nil means "valid". Set by the
/// keyboard layer so that a bad key name is reported with its line number.
public typealias MacroKeySpecCheck = @Sendable (String) -> String?

extension Macro {
    /// Parses `.kvm-macro` text. A bad line raises `usage` naming its line number.
    public static func parse(_ text: String, name: String = "macro", checkKey: MacroKeySpecCheck? = nil) throws(NanoKVMError) -> Macro {
        var macro = Macro()
        var lastOffset = 0.0
        var physicalLines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if physicalLines.last == "" { physicalLines.removeLast() }  // a final newline is not an extra line
        for (index, rawLine) in physicalLines.enumerated() {
            let number = index + 1
            func fail(_ message: String) -> NanoKVMError {
                NanoKVMError(.usage, "\(name):\(number): \(message)")
            }
            var line = rawLine
            if line.hasSuffix("\r") { line.removeLast() }
            let (body, comment) = try splitComment(line, fail: fail)
            let trimmed = body.trimmingSpaces
            if trimmed.isEmpty {
                macro.lines.append(MacroLine(comment: comment))
                continue
            }
            var scanner = MacroScanner(trimmed)
            guard let offsetText = scanner.word(), let offset = Double(offsetText), offset.isFinite, offset >= 0 else {
                throw fail("a step starts with its time offset in seconds (e.g. `0.25 key enter`)")
            }
            guard offset >= lastOffset else {
                throw fail("offset \(offsetText) is earlier than the step before (\(MacroWriter.format(lastOffset)))")
            }
            guard let keyword = scanner.word() else { throw fail("missing step after the offset") }
            let action: MacroAction
            switch keyword {
            case "key_down", "key_up", "key":
                guard let spec = scanner.word(), scanner.atEnd else { throw fail("\(keyword) takes one key spec (e.g. `ctrl+c`)") }
                if let problem = checkKey?(spec) { throw fail(problem) }
                action = keyword == "key" ? .key(spec) : keyword == "key_down" ? .keyDown(spec) : .keyUp(spec)
            case "type":
                let text = try scanner.quoted(fail: fail)
                guard scanner.atEnd else { throw fail("text after the quoted string") }
                action = .type(text)
            case "move":
                guard let x = scanner.number(), let y = scanner.number(), scanner.atEnd, (0...1).contains(x), (0...1).contains(y)
                else { throw fail("move takes x and y as fractions 0..1 of the screen") }
                action = .move(x: x, y: y)
            case "move_by":
                guard let dx = scanner.integer(), let dy = scanner.integer(), scanner.atEnd, abs(dx) <= 100_000, abs(dy) <= 100_000
                else { throw fail("move_by takes two integers (device units)") }
                action = .moveBy(dx: dx, dy: dy)
            case "mouse_down", "mouse_up":
                guard let button = scanner.word(), scanner.atEnd, MacroAction.mouseButtons.contains(button) else {
                    throw fail("\(keyword) takes a button: left, right, middle, back or forward")
                }
                action = keyword == "mouse_down" ? .mouseDown(button) : .mouseUp(button)
            case "scroll":
                guard let notches = scanner.integer(), scanner.atEnd, abs(notches) <= 10_000 else {
                    throw fail("scroll takes an integer number of notches (positive scrolls down)")
                }
                action = .scroll(notches)
            default:
                throw fail("unknown step '\(keyword)' (key_down, key_up, key, type, move, move_by, mouse_down, mouse_up, scroll)")
            }
            lastOffset = offset
            macro.lines.append(MacroLine(offset: offset, action: action, comment: comment))
        }
        return macro
    }

    /// Splits `line` at a `#` outside a quoted string.
    private static func splitComment(_ line: String, fail: (String) -> NanoKVMError) throws(NanoKVMError) -> (String, String?) {
        var inString = false
        var escaped = false
        for index in line.indices {
            let c = line[index]
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if c == "#" {
                return (String(line[..<index]), String(line[line.index(after: index)...]))
            }
        }
        return (line, nil)
    }
}

/// Reads the words of one step.
struct MacroScanner {
    private let characters: [Character]
    private var index = 0

    init(_ text: String) { characters = Array(text) }

    var atEnd: Bool {
        var i = index
        while i < characters.count, characters[i] == " " || characters[i] == "\t" { i += 1 }
        return i == characters.count
    }

    mutating func skipSpace() {
        while index < characters.count, characters[index] == " " || characters[index] == "\t" { index += 1 }
    }

    mutating func word() -> String? {
        skipSpace()
        let start = index
        while index < characters.count, characters[index] != " ", characters[index] != "\t" { index += 1 }
        return index > start ? String(characters[start..<index]) : nil
    }

    mutating func number() -> Double? { word().flatMap { Double($0) }.flatMap { $0.isFinite ? $0 : nil } }
    mutating func integer() -> Int? { word().flatMap { Int($0) } }

    /// A JSON-style quoted string (`\"`, `\\`, `\n`, `\t`, `\r`, `\uXXXX`).
    mutating func quoted(fail: (String) -> NanoKVMError) throws(NanoKVMError) -> String {
        skipSpace()
        guard index < characters.count, characters[index] == "\"" else { throw fail("type takes a quoted string, e.g. `type \"hello\\n\"`") }
        var end = index + 1
        var escaped = false
        while end < characters.count {
            let c = characters[end]
            if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { break }
            end += 1
        }
        guard end < characters.count else { throw fail("unterminated string") }
        let literal = String(characters[index...end])
        index = end + 1
        let value: JSONValue
        do throws(JSONSyntaxError) {
            value = try JSONValue.parse(literal)
        } catch {
            throw fail("bad string: \(error.description)")
        }
        guard case .string(let text) = value else { throw fail("bad string") }
        return text
    }
}

// MARK: Writing

enum MacroWriter {
    /// Shortest decimal text that reads back as the same offset (at most microseconds are
    /// meaningful; longer fractions are rounded to them).
    static func format(_ offset: Double) -> String {
        let rounded = (offset * 1_000_000).rounded() / 1_000_000
        var text = "\(rounded)"
        if text.hasSuffix(".0") { text.removeLast(2) }
        if text.contains("e") {
            // Tiny or huge values: fixed notation with six decimals, trailing zeros trimmed.
            let micros = Int64((rounded * 1_000_000).rounded())
            let whole = micros / 1_000_000
            var fraction = String(micros % 1_000_000)
            fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text = fraction.isEmpty ? String(whole) : "\(whole).\(fraction)"
        }
        return text
    }

    static func quote(_ text: String) -> String {
        (try? JSONValue.string(text).serialized()) ?? "\"\""
    }

    static func line(_ line: MacroLine) -> String {
        var text = ""
        if let offset = line.offset, let action = line.action {
            text = format(offset) + " " + action.keyword
            switch action {
            case .keyDown(let spec), .keyUp(let spec), .key(let spec): text += " " + spec
            case .type(let string): text += " " + quote(string)
            case .move(let x, let y): text += " " + format(x) + " " + format(y)
            case .moveBy(let dx, let dy): text += " \(dx) \(dy)"
            case .mouseDown(let button), .mouseUp(let button): text += " " + button
            case .scroll(let notches): text += " \(notches)"
            }
            if let comment = line.comment { text += " #" + comment }
        } else if let comment = line.comment {
            text = "#" + comment
        }
        return text
    }
}

extension Macro {
    /// The `.kvm-macro` text; `parse(text())` gives this macro back, and the text of a file in
    /// this canonical form is reproduced byte for byte.
    public func text() -> String {
        lines.map(MacroWriter.line).joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
    }
}

extension String {
    var trimmingSpaces: String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return String(text)
    }
}

// MARK: Layout

extension Macro {
    /// The keyboard layout a `.kvm-macro` names for its `type` steps, written as a comment line
    /// `# layout: ch(fr)` (a comment, so readers that do not know it still play the file); nil
    /// when it names none. Setting it replaces that line (first in the file).
    public var layout: String? {
        get {
            for line in lines where line.offset == nil {
                if let comment = line.comment, let name = Self.layoutName(inComment: comment) { return name }
            }
            return nil
        }
        set {
            lines.removeAll { $0.offset == nil && $0.comment.flatMap(Self.layoutName(inComment:)) != nil }
            if let newValue { lines.insert(MacroLine(comment: " layout: \(newValue)"), at: 0) }
        }
    }

    private static func layoutName(inComment comment: String) -> String? {
        let trimmed = comment.trimmingSpaces
        guard trimmed.hasPrefix("layout:") else { return nil }
        let name = String(trimmed.dropFirst("layout:".count)).trimmingSpaces
        return name.isEmpty ? nil : name
    }
}
