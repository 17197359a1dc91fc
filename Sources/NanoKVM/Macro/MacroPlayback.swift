// Macros and the keyboard layer: the steps `HIDController.play` runs for a macro, and the
// macro steps of recorded controller calls.

extension Macro {
    /// The macro as controller steps. Key specs and mouse buttons are checked here, so a bad
    /// macro fails before anything is sent; `type` steps use `layout`.
    public func hidSteps(layout: KeyboardLayout = .us) throws(NanoKVMError) -> [HIDTimedStep] {
        try steps.map { (offset, action) throws(NanoKVMError) -> HIDTimedStep in
            let step: HIDStep
            switch action {
            case .keyDown(let spec): step = .keyDown(try KeyChord(parsing: spec))
            case .keyUp(let spec): step = .keyUp(try KeyChord(parsing: spec))
            case .key(let spec): step = .key(try KeyChord(parsing: spec))
            case .type(let text): step = .type(text, TypingOptions(layout: layout))
            case .move(let x, let y): step = .move(x: x, y: y)
            case .moveBy(let dx, let dy): step = .moveBy(dx: dx, dy: dy)
            case .mouseDown(let button): step = .mouseDown(try MouseButton(name: button))
            case .mouseUp(let button): step = .mouseUp(try MouseButton(name: button))
            case .scroll(let dy): step = .scroll(dy: dy, dx: 0)
            }
            return HIDTimedStep(offset, step)
        }
    }

    /// The macro of recorded calls: every step at its time from `start` (`MonotonicClock`).
    /// Secret text is never reported by the controller; `release_all` has no macro step.
    /// The macro names its layout (`# layout:`, first line): the one its `type` steps were
    /// typed with, else `defaultLayout` (the device's), so that it types the same keys when
    /// played where another layout is the default.
    public static func recorded(_ records: [HIDCallRecord], start: Double, defaultLayout: String? = nil) -> Macro {
        var items: [(offset: Double, action: MacroAction)] = []
        var typedLayout: String?
        for record in records {
            for timed in record.steps {
                let offset = max(0, record.time - start + timed.offset)
                let action: MacroAction?
                switch timed.step {
                case .keyDown(let chord): action = .keyDown(chord.description)
                case .keyUp(let chord): action = .keyUp(chord.description)
                case .key(let chord): action = .key(chord.description)
                case .type(let text, let options):
                    action = options.secret ? nil : .type(text)
                    if !options.secret, typedLayout == nil { typedLayout = options.layout.name }
                case .move(let x, let y): action = .move(x: x, y: y)
                case .moveBy(let dx, let dy): action = .moveBy(dx: dx, dy: dy)
                case .mouseDown(let button): action = .mouseDown(button.rawValue)
                case .mouseUp(let button): action = .mouseUp(button.rawValue)
                case .scroll(let dy, _): action = .scroll(dy)
                case .releaseAll: action = nil
                }
                if let action { items.append((offset, action)) }
            }
        }
        var macro = Macro()
        var last = 0.0
        for item in items.sorted(by: { $0.offset < $1.offset }) {
            last = max(last, item.offset)
            macro.append(item.action, at: last)
        }
        macro.layout = typedLayout ?? defaultLayout
        return macro
    }
}
