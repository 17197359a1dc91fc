// Keyboard and mouse input as data (issue 5): the steps a script or a macro asks for, the
// host-side input state they lead to, and the compiler that turns timed steps into the exact
// WebSocket messages of the firmware generation, one frame each, with the state after each.
// The player (ReportPlayer.swift) sends them against absolute deadlines; HIDController.swift
// is the public face.

/// A mouse button.
public enum MouseButton: String, Sendable, CaseIterable {
    case left, right, middle, back, forward

    /// Its bit in the report's button byte (§8.2).
    public var bit: UInt8 {
        switch self {
        case .left: return 0x01
        case .right: return 0x02
        case .middle: return 0x04
        case .back: return 0x08
        case .forward: return 0x10
        }
    }

    /// Parses `left`, `right`, `middle`, `back`, `forward` (case-insensitive); anything else
    /// raises `usage`.
    public init(name: String) throws(NanoKVMError) {
        guard let button = MouseButton(rawValue: name.lowercased()) else {
            throw NanoKVMError(.usage, "unknown mouse button '\(name)' (left, right, middle, back, forward)")
        }
        self = button
    }
}

/// An absolute pointer position in device units (0…32767 on both axes).
public struct AbsolutePosition: Sendable, Equatable {
    public var x: UInt16
    public var y: UInt16
    public init(x: UInt16, y: UInt16) {
        self.x = min(x, 32767)
        self.y = min(y, 32767)
    }

    /// The web UI's scaling of a fraction of the screen (§8.2/§8.3): `floor(32767·f) + 1`,
    /// kept within the descriptor's 32767. Raises `usage` outside 0…1.
    public static func deviceUnits(fraction: Double, axis: String = "x") throws(NanoKVMError) -> UInt16 {
        guard fraction.isFinite, fraction >= 0, fraction <= 1 else {
            throw NanoKVMError(.usage, "\(axis) must be a fraction of the screen between 0 and 1 (got \(fraction))")
        }
        return UInt16(min(32767, (32767 * fraction).rounded(.down) + 1))
    }

    /// A position from fractions of the screen.
    public init(fractionX: Double, fractionY: Double) throws(NanoKVMError) {
        self.init(
            x: try AbsolutePosition.deviceUnits(fraction: fractionX, axis: "x"),
            y: try AbsolutePosition.deviceUnits(fraction: fractionY, axis: "y"))
    }
}

/// What the host's keyboard and mice hold, as far as our reports say.
public struct HIDInputState: Sendable, Equatable {
    /// Modifier bits held.
    public internal(set) var modifiers: UInt8 = 0
    /// Non-modifier usages held, in press order.
    public internal(set) var keys: [UInt8] = []
    /// Mouse buttons held.
    public internal(set) var buttons: UInt8 = 0
    /// The last absolute position sent, nil before any.
    public internal(set) var position: AbsolutePosition?
    /// The pointer device the last move used: true = absolute.
    var absoluteMode = false
    /// Button bits each device (relative, absolute) last reported.
    var relativeButtons: UInt8 = 0
    var absoluteButtons: UInt8 = 0

    public init() {}

    /// Nothing held.
    public var isReleased: Bool { modifiers == 0 && keys.isEmpty && buttons == 0 && relativeButtons == 0 && absoluteButtons == 0 }

    var keyboardReport: KeyboardReport { KeyboardReport(modifiers: modifiers, keys: keys) }
}

/// How `type` types.
public struct TypingOptions: Sendable {
    /// The host's keyboard layout (the text is turned into its key positions).
    public var layout: KeyboardLayout
    /// Seconds from one key press to the next (each key is released halfway). 0 = as fast as
    /// the connection takes them.
    public var delay: Double
    /// Never logged or recorded; error messages do not quote it.
    public var secret: Bool

    public init(layout: KeyboardLayout = .us, delay: Double = 0.01, secret: Bool = false) {
        self.layout = layout
        self.delay = delay
        self.secret = secret
    }
}

/// Timing of `key` chords and mouse steps (seconds).
public struct HIDTiming: Sendable, Equatable {
    /// Between the reports of a chord (each press, each release).
    public var keyInterval: Double
    /// From a move to the button press that follows it (click at x, y; drag).
    public var moveSettle: Double
    /// A click's button press length.
    public var clickHold: Double
    /// From the first click's release to the second press of a double click.
    public var doubleClickGap: Double
    /// Between two wheel notches.
    public var scrollInterval: Double
    /// Between the reports of a relative move split into ±127 pieces.
    public var relativeInterval: Double

    public init(
        keyInterval: Double = 0.01, moveSettle: Double = 0.01, clickHold: Double = 0.02, doubleClickGap: Double = 0.05,
        scrollInterval: Double = 0.01, relativeInterval: Double = 0
    ) {
        self.keyInterval = keyInterval
        self.moveSettle = moveSettle
        self.clickHold = clickHold
        self.doubleClickGap = doubleClickGap
        self.scrollInterval = scrollInterval
        self.relativeInterval = relativeInterval
    }
}

/// `drag` options.
public struct DragOptions: Sendable, Equatable {
    public var button: MouseButton
    /// Moves between the press and the release (the last one lands on the end point).
    public var steps: Int
    /// Seconds between the moves.
    public var stepInterval: Double

    public init(button: MouseButton = .left, steps: Int = 10, stepInterval: Double = 0.02) {
        self.button = button
        self.steps = steps
        self.stepInterval = stepInterval
    }
}

/// One step of keyboard/mouse input; the unit of macros and recordings.
public enum HIDStep: Sendable {
    case keyDown(KeyChord)
    case keyUp(KeyChord)
    /// Press the chord's parts in order, release them in reverse order.
    case key(KeyChord)
    case type(String, TypingOptions)
    /// Absolute move, fractions 0…1 of the screen.
    case move(x: Double, y: Double)
    /// Relative move in device units (split into ±127 reports).
    case moveBy(dx: Int, dy: Int)
    case mouseDown(MouseButton)
    case mouseUp(MouseButton)
    /// Wheel notches; positive `dy` scrolls down (towards the user), positive `dx` right
    /// (Shift + wheel: the device has no horizontal wheel).
    case scroll(dy: Int, dx: Int)
    /// All keys up and no mouse buttons.
    case releaseAll

    /// The step's name as in the macro format.
    public var name: String {
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
        case .releaseAll: return "release_all"
        }
    }
}

/// A step at an offset (seconds) from the start of a sequence.
public struct HIDTimedStep: Sendable {
    public var offset: Double
    public var step: HIDStep

    public init(_ offset: Double, _ step: HIDStep) {
        self.offset = offset
        self.step = step
    }
}

/// One WebSocket message at its offset, with the input state once it is applied.
public struct ScheduledHIDMessage: Sendable, Equatable {
    /// Seconds from the start of the sequence.
    public var offset: Double
    /// Exactly one frame on the wire.
    public var message: HIDMessage
    /// The host's input state after this message.
    public var state: HIDInputState
}

/// Turns timed steps into messages for one firmware generation, tracking the input state.
/// Everything is checked while compiling, so nothing is sent for a sequence that cannot be
/// sent whole (an untypeable character, an unknown button, a key the gadget lacks).
public struct HIDCompiler: Sendable {
    public let generation: FirmwareGeneration
    public var timing: HIDTiming
    /// The state after the messages so far.
    public private(set) var state: HIDInputState
    public private(set) var messages: [ScheduledHIDMessage] = []
    /// Where the last step's messages ended (a step never starts before it).
    public private(set) var end: Double = 0
    private var legacy: LegacyHIDEncoder
    private let highestUsage: UInt8

    public init(profile: FirmwareProfile, state: HIDInputState = HIDInputState(), timing: HIDTiming = HIDTiming()) {
        self.generation = profile.generation
        self.timing = timing
        self.state = state
        self.legacy = LegacyHIDEncoder(profile: profile)
        self.highestUsage = KeyNames.highestUsage(for: profile.generation)
    }

    /// Appends `step` at `offset` (or where the previous step ended, if later).
    public mutating func append(_ step: HIDStep, at offset: Double = 0) throws(NanoKVMError) {
        guard offset.isFinite, offset >= 0 else { throw NanoKVMError(.usage, "a step's time offset must be a finite number ≥ 0") }
        var time = max(offset, end)
        switch step {
        case .keyDown(let chord):
            try check(chord)
            for (index, component) in chord.components.enumerated() {
                press(component, at: time + Double(index) * timing.keyInterval)
            }
            time += Double(max(chord.components.count - 1, 0)) * timing.keyInterval
        case .keyUp(let chord):
            try check(chord)
            release(chord.components.reversed(), at: time, interval: timing.keyInterval)
            time += generation == .legacy ? 0 : Double(max(chord.components.count - 1, 0)) * timing.keyInterval
        case .key(let chord):
            try check(chord)
            for component in chord.components {
                press(component, at: time)
                time += timing.keyInterval
            }
            release(chord.components.reversed(), at: time, interval: timing.keyInterval)
            time += generation == .legacy ? 0 : Double(max(chord.components.count - 1, 0)) * timing.keyInterval
        case .type(let text, let options):
            time = try type(text, options: options, at: time)
        case .move(let x, let y):
            moveAbsolute(try AbsolutePosition(fractionX: x, fractionY: y), at: time)
        case .moveBy(let dx, let dy):
            time = moveRelative(dx: dx, dy: dy, at: time)
        case .mouseDown(let button):
            try check(button)
            setButtons(state.buttons | button.bit, at: time)
        case .mouseUp(let button):
            try check(button)
            setButtons(state.buttons & ~button.bit, at: time)
        case .scroll(let dy, let dx):
            time = scroll(dy: dy, dx: dx, at: time)
        case .releaseAll:
            releaseAll(at: time)
        }
        end = time
    }

    // MARK: Keyboard

    private func check(_ chord: KeyChord) throws(NanoKVMError) {
        for case .key(let usage) in chord.components where usage > highestUsage {
            let name = KeyNames.canonicalName(of: .key(usage))
            let why = usage >= 0xE8
                ? "it is a consumer-control key this device's keyboard does not have"
                : "the keyboard gadget of this firmware generation only has usages up to 0x65"
            throw NanoKVMError(.unsupported, "key \(name) cannot be sent: \(why)")
        }
        let newKeys = chord.keys.filter { !state.keys.contains($0) }
        if generation == .current, state.keys.count + newKeys.count > 6 {
            throw NanoKVMError(.usage, "at most six keys (besides modifiers) can be held at once")
        }
    }

    private mutating func emit(_ message: HIDMessage, at time: Double) {
        messages.append(ScheduledHIDMessage(offset: time, message: message, state: state))
    }

    /// The legacy press message: the key's usage (a modifier's own usage 0xE0…) with the held
    /// modifiers. The server writes `[modifiers, 0, usage, 0…]`.
    private mutating func legacyPress(usage: UInt8) -> HIDMessage {
        let encoded = legacy.encode(.keyboard(KeyboardReport(modifiers: state.modifiers, keys: [usage])))
        return .legacy(encoded.first ?? .keyboard(usage: 0, ctrl: 0, shift: 0, alt: 0, meta: 0))
    }

    private static let legacyKeyUp = HIDMessage.legacy(.keyboard(usage: 0, ctrl: 0, shift: 0, alt: 0, meta: 0))

    /// The usage a legacy press report carries for the current state (the newest key, else a
    /// held modifier's usage), nil when nothing is held.
    private var legacyHeldUsage: UInt8? {
        if let key = state.keys.last { return key }
        guard state.modifiers != 0 else { return nil }
        for index in 0..<8 where state.modifiers & (UInt8(1) << UInt8(index)) != 0 { return 0xE0 + UInt8(index) }
        return nil
    }

    private mutating func press(_ component: KeyComponent, at time: Double) {
        switch component {
        case .modifier(let bit): state.modifiers |= bit
        case .key(let usage): if !state.keys.contains(usage) { state.keys.append(usage) }
        }
        switch generation {
        case .current: emit(.keyboard(state.keyboardReport), at: time)
        case .legacy: emit(legacyPress(usage: component.usage), at: time)
        }
    }

    /// Releases `components` one report each (current) or all at once (legacy: an all-up
    /// message, then the keys still held are pressed again).
    private mutating func release<S: Sequence>(_ components: S, at time: Double, interval: Double) where S.Element == KeyComponent {
        var t = time
        for component in components {
            switch component {
            case .modifier(let bit): state.modifiers &= ~bit
            case .key(let usage): state.keys.removeAll { $0 == usage }
            }
            if generation == .current {
                emit(.keyboard(state.keyboardReport), at: t)
                t += interval
            }
        }
        if generation == .legacy { legacyRestore(at: time) }
    }

    /// Legacy: all keys up, then the held state pressed again (one key can be reported).
    private mutating func legacyRestore(at time: Double) {
        emit(Self.legacyKeyUp, at: time)
        if let usage = legacyHeldUsage { emit(legacyPress(usage: usage), at: time) }
    }

    private mutating func type(_ text: String, options: TypingOptions, at start: Double) throws(NanoKVMError) -> Double {
        guard options.delay.isFinite, options.delay >= 0 else { throw NanoKVMError(.usage, "delay must be a number of seconds ≥ 0") }
        // Check every character before anything is scheduled.
        var strokes: [KeyStroke] = []
        var position = 0
        for character in text {
            position += 1
            guard let sequence = options.layout.keystrokes(for: character) else {
                let what = options.secret
                    ? "character \(position) of the secret text"
                    : "character \(Self.describe(character)) (position \(position))"
                var message = "\(what) cannot be typed with the '\(options.layout.name)' keyboard layout"
                // A secret's character is not hinted at, not even by the layouts that have it.
                if !options.secret {
                    let others = XKBEngine.layoutsTyping(character).filter { $0 != options.layout.name }
                    message += others.isEmpty ? " (nor with any common layout)" : " (layouts that can: \(others.joined(separator: ", ")))"
                }
                throw NanoKVMError(.usage, message)
            }
            if generation == .legacy, let levelThreeKey = sequence.lazy.compactMap(\.heldUsage).first {
                // The legacy server writes one key per report, so a key cannot be held while
                // another is pressed: the report of the second releases the first.
                let what = options.secret ? "character \(position) of the secret text" : "character \(Self.describe(character))"
                throw NanoKVMError(
                    .unsupported,
                    "\(what) cannot be typed on the '\(options.layout.name)' layout with this firmware: its level 3 is the key \(KeyNames.canonicalName(of: .key(levelThreeKey))) held with another, and the keyboard messages of firmware 2.3.1 and older carry one key")
            }
            strokes += sequence
        }
        var time = start
        for (index, stroke) in strokes.enumerated() {
            let pressAt = start + Double(index) * options.delay
            let releaseAt = pressAt + options.delay / 2
            let held = state
            state.modifiers |= stroke.modifiers
            switch generation {
            case .current:
                if let levelThreeKey = stroke.heldUsage, !state.keys.contains(levelThreeKey) {
                    // The level-3 key in a report of its own first, as a modifier is pressed
                    // before the key: a host that reads a report's keys in usage order must
                    // not see the base key before it.
                    state.keys.append(levelThreeKey)
                    emit(.keyboard(state.keyboardReport), at: pressAt)
                }
                if !state.keys.contains(stroke.usage) { state.keys.append(stroke.usage) }
                emit(.keyboard(state.keyboardReport), at: pressAt)
                state = held
                emit(.keyboard(state.keyboardReport), at: releaseAt)
            case .legacy:
                emit(legacyPress(usage: stroke.usage), at: pressAt)
                state = held
                legacyRestore(at: releaseAt)
            }
            time = releaseAt
        }
        return time
    }

    static func describe(_ character: Character) -> String {
        let scalars = character.unicodeScalars.map { scalar -> String in
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        }.joined(separator: " ")
        if character.unicodeScalars.allSatisfy({ $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            return scalars
        }
        return "'\(character)' (\(scalars))"
    }

    // MARK: Mouse

    private func check(_ button: MouseButton) throws(NanoKVMError) {
        if generation == .legacy, button.bit > 0x04 {
            throw NanoKVMError(.unsupported, "the \(button.rawValue) button needs firmware 2.3.2 or later (the older mouse has three buttons)")
        }
    }

    private mutating func moveAbsolute(_ position: AbsolutePosition, at time: Double) {
        state.position = position
        state.absoluteMode = true
        switch generation {
        case .current:
            state.absoluteButtons = state.buttons
            emit(.absoluteMouse(AbsoluteMouseReport(buttons: state.buttons, x: position.x, y: position.y)), at: time)
        case .legacy:
            // The legacy server writes absolute reports without buttons; buttons live on the
            // relative device.
            emit(.legacy(.mouse(event: .absoluteMove, button: 0, x: Int(position.x), y: Int(position.y))), at: time)
        }
    }

    /// Splits a move into reports of at most ±127 per axis whose sum is exactly (dx, dy).
    static func split(dx: Int, dy: Int) -> [(Int8, Int8)] {
        let count = max((abs(dx) + 126) / 127, (abs(dy) + 126) / 127)
        guard count > 0 else { return [] }
        var pieces: [(Int8, Int8)] = []
        for index in 0..<count {
            let x = dx * (index + 1) / count - dx * index / count
            let y = dy * (index + 1) / count - dy * index / count
            pieces.append((Int8(clamping: x), Int8(clamping: y)))
        }
        return pieces
    }

    private mutating func moveRelative(dx: Int, dy: Int, at start: Double) -> Double {
        state.absoluteMode = false
        var time = start
        for (index, (x, y)) in Self.split(dx: dx, dy: dy).enumerated() {
            time = start + Double(index) * timing.relativeInterval
            switch generation {
            case .current:
                state.relativeButtons = state.buttons
                emit(.relativeMouse(RelativeMouseReport(buttons: state.buttons, dx: x, dy: y)), at: time)
            case .legacy:
                emit(.legacy(.mouse(event: .relativeMove, button: Int(state.buttons & 0x07), x: Int(x), y: Int(y))), at: time)
            }
        }
        return time
    }

    /// A report with the new buttons on the device the pointer last used; the other device is
    /// brought in line when it still reports different buttons.
    private mutating func setButtons(_ buttons: UInt8, at time: Double) {
        state.buttons = buttons
        switch generation {
        case .current:
            let useAbsolute = state.absoluteMode && state.position != nil
            if useAbsolute, let position = state.position {
                state.absoluteButtons = buttons
                emit(.absoluteMouse(AbsoluteMouseReport(buttons: buttons, x: position.x, y: position.y)), at: time)
                if state.relativeButtons != 0 && state.relativeButtons != buttons {
                    state.relativeButtons = 0
                    emit(.relativeMouse(RelativeMouseReport()), at: time)
                }
            } else {
                state.relativeButtons = buttons
                emit(.relativeMouse(RelativeMouseReport(buttons: buttons)), at: time)
                if state.absoluteButtons != 0, state.absoluteButtons != buttons, let position = state.position {
                    state.absoluteButtons = 0
                    emit(.absoluteMouse(AbsoluteMouseReport(buttons: 0, x: position.x, y: position.y)), at: time)
                }
            }
        case .legacy:
            legacyButtons(at: time)
        }
    }

    /// Legacy: a button-down event names one button; several held buttons are written with a
    /// zero relative move (the server copies its button field into the report); release is
    /// all-up, then what stays held is pressed again.
    private mutating func legacyButtons(at time: Double) {
        let buttons = state.buttons & 0x07
        let previous = state.relativeButtons
        state.relativeButtons = buttons
        let onlyPressed = buttons != previous && previous & ~buttons == 0
        if !onlyPressed && (buttons == 0 || buttons != previous) {
            emit(.legacy(.mouse(event: .buttonUp, button: 0, x: 0, y: 0)), at: time)
        }
        guard buttons != 0 else { return }
        if buttons.nonzeroBitCount == 1 {
            let value = legacy.buttonBitValues ? Int(buttons) : (buttons == 0x01 ? 1 : buttons == 0x02 ? 2 : 3)
            emit(.legacy(.mouse(event: .buttonDown, button: value, x: 0, y: 0)), at: time)
        } else {
            emit(.legacy(.mouse(event: .relativeMove, button: Int(buttons), x: 0, y: 0)), at: time)
        }
    }

    private mutating func scroll(dy: Int, dx: Int, at start: Double) -> Double {
        var time = start
        var first = true
        func next() -> Double {
            if first { first = false; return time }
            time += timing.scrollInterval
            return time
        }
        // Report wheel > 0 scrolls up; the caller's positive dy scrolls down.
        for _ in 0..<abs(dy) { wheel(dy > 0 ? -1 : 1, at: next()) }
        if dx != 0 {
            // No horizontal wheel on this device: Shift + wheel, which hosts scroll sideways.
            let shiftHeld = state.modifiers & KeyModifier.anyShift != 0
            if !shiftHeld { press(.modifier(KeyModifier.leftShift), at: next()) }
            for _ in 0..<abs(dx) { wheel(dx > 0 ? -1 : 1, at: next()) }
            if !shiftHeld { release([.modifier(KeyModifier.leftShift)], at: next(), interval: 0) }
        }
        return time
    }

    private mutating func wheel(_ notch: Int8, at time: Double) {
        switch generation {
        case .current:
            if state.absoluteMode, let position = state.position {
                emit(.absoluteMouse(AbsoluteMouseReport(buttons: state.buttons, x: position.x, y: position.y, wheel: notch)), at: time)
            } else {
                emit(.relativeMouse(RelativeMouseReport(buttons: state.buttons, wheel: notch)), at: time)
            }
        case .legacy:
            emit(.legacy(legacy.scroll(notch)), at: time)
        }
    }

    private mutating func releaseAll(at time: Double) {
        state.modifiers = 0
        state.keys = []
        state.buttons = 0
        switch generation {
        case .current:
            emit(.keyboard(.released), at: time)
            let absoluteHeld = state.absoluteButtons != 0
            state.relativeButtons = 0
            state.absoluteButtons = 0
            emit(.relativeMouse(RelativeMouseReport()), at: time)
            if absoluteHeld, let position = state.position {
                emit(.absoluteMouse(AbsoluteMouseReport(buttons: 0, x: position.x, y: position.y)), at: time)
            }
        case .legacy:
            state.relativeButtons = 0
            state.absoluteButtons = 0
            emit(Self.legacyKeyUp, at: time)
            emit(.legacy(.mouse(event: .buttonUp, button: 0, x: 0, y: 0)), at: time)
        }
    }

    /// The messages of `releaseAll` for any state (what cancellation and close send).
    public static func releaseMessages(profile: FirmwareProfile, state: HIDInputState) -> [ScheduledHIDMessage] {
        var compiler = HIDCompiler(profile: profile, state: state)
        compiler.releaseAll(at: 0)
        return compiler.messages
    }
}
