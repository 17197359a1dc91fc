// Keyboard and mouse over `/api/ws` for scripts (issue 5): `type`, `key`, `key_down/up`,
// `release_all`, moves, clicks, drags and the wheel, each one a timed sequence played by the
// ReportPlayer against absolute deadlines. The controller owns one WebSocket at a time and
// reconnects after a drop, resending from the first message whose write did not complete
// (nothing twice, nothing lost). Calls are played one after the other (FIFO). On
// cancellation, on any failure while playing, and on close it releases every key and button.

import Synchronization

public struct HIDControllerOptions: Sendable {
    /// Heartbeat interval; nil uses the web UI's: 10 s (binary `00`, 2.3.2+), 60 s (`[0]`).
    public var heartbeatInterval: Duration?
    /// How long to keep trying to reopen a dropped WebSocket before the call fails.
    public var reconnectTimeout: Duration
    /// Spacing of chords, clicks, drags and wheel notches.
    public var timing: HIDTiming

    public init(heartbeatInterval: Duration? = nil, reconnectTimeout: Duration = .seconds(30), timing: HIDTiming = HIDTiming()) {
        self.heartbeatInterval = heartbeatInterval
        self.reconnectTimeout = reconnectTimeout
        self.timing = timing
    }
}

/// A call as a recorder sees it: when it started playing and its steps (offsets from then).
/// Secret text is never reported.
public struct HIDCallRecord: Sendable {
    /// `MonotonicClock` seconds.
    public var time: Double
    public var steps: [HIDTimedStep]

    public init(time: Double, steps: [HIDTimedStep]) {
        self.time = time
        self.steps = steps
    }
}

public final class HIDController: Sendable {
    public let client: NanoKVMClient
    public let options: HIDControllerOptions
    let link: HIDLink
    private let lock = HIDCallLock()
    private let acknowledged = Mutex(HIDInputState())
    private let observers = Mutex<(next: Int, callbacks: [Int: @Sendable (HIDCallRecord) -> Void])>((0, [:]))
    private let closed = Mutex(false)

    /// A controller for `client`'s device. The WebSocket opens on the first call.
    public init(client: NanoKVMClient, options: HIDControllerOptions = HIDControllerOptions()) {
        self.client = client
        self.options = options
        let interval = options.heartbeatInterval ?? (client.generation == .current ? .seconds(10) : .seconds(60))
        self.link = HIDLink(client: client, heartbeat: interval, reconnectTimeout: options.reconnectTimeout)
        link.setDropHandler { [weak self] in self?.reconnectWhileIdle() }
    }

    /// The protocol in use (binary reports 2.3.2+, JSON arrays before).
    public var generation: FirmwareGeneration { client.generation }
    /// What the host holds according to the reports whose writes completed.
    public var state: HIDInputState { acknowledged.withLock { $0 } }
    /// WebSocket connections reopened after a drop since the controller was made.
    public var reconnectCount: Int { link.reconnectCount }
    /// The host's keyboard LEDs as the device last pushed them (`hid-led-status`, 2.5.0+);
    /// nil until it did. `client.hid.keyboardLEDs()` asks the device.
    public var keyboardLEDs: KeyboardLEDs? { link.keyboardLEDs }
    /// True while a WebSocket is open.
    public var isConnected: Bool { link.openSession != nil }

    // MARK: Keyboard

    /// Types `text` key by key in `options.layout` (a press and a release per key, dead keys
    /// where the layout needs them). An untypeable character raises `usage` before anything is
    /// sent.
    @discardableResult
    public func type(_ text: String, options: TypingOptions = TypingOptions()) async throws(NanoKVMError) -> HIDPlayback {
        try await run([HIDTimedStep(0, .type(text, options))], secret: options.secret)
    }

    /// Presses and releases each chord in order (`"ctrl+alt+delete"`, `"enter"`, `"shift+F10"`):
    /// its parts are pressed in the order written and released in reverse order (all at once on
    /// the JSON protocol). An unknown name raises `usage` before anything is sent.
    @discardableResult
    public func key(_ specs: [String]) async throws(NanoKVMError) -> HIDPlayback {
        let chords = try parse(specs)
        return try await run(chords.map { HIDTimedStep(0, .key($0)) }, gap: options.timing.keyInterval)
    }

    @discardableResult
    public func key(_ specs: String...) async throws(NanoKVMError) -> HIDPlayback { try await key(specs) }

    /// Presses a chord and keeps it held.
    @discardableResult
    public func keyDown(_ spec: String) async throws(NanoKVMError) -> HIDPlayback {
        try await run([HIDTimedStep(0, .keyDown(try KeyChord(parsing: spec)))])
    }

    /// Releases a chord (in reverse order).
    @discardableResult
    public func keyUp(_ spec: String) async throws(NanoKVMError) -> HIDPlayback {
        try await run([HIDTimedStep(0, .keyUp(try KeyChord(parsing: spec)))])
    }

    /// Holds `spec` while `body` runs and always releases it, also when `body` throws or the
    /// task is cancelled.
    public func hold<T>(_ spec: String, _ body: () async throws -> T) async throws -> T {
        let chord = try KeyChord(parsing: spec)
        _ = try await run([HIDTimedStep(0, .keyDown(chord))])
        let result: T
        do {
            result = try await body()
        } catch {
            await releaseIgnoringCancellation(.keyUp(chord))
            throw error
        }
        if Task.isCancelled {
            await releaseIgnoringCancellation(.keyUp(chord))
            throw NanoKVMError(.cancelled, "cancelled")
        }
        _ = try await run([HIDTimedStep(0, .keyUp(chord))])
        return result
    }

    /// An all-keys-up keyboard report and a no-buttons mouse report.
    @discardableResult
    public func releaseAll() async throws(NanoKVMError) -> HIDPlayback {
        try await run([HIDTimedStep(0, .releaseAll)])
    }

    // MARK: Mouse

    /// Absolute move to fractions 0…1 of the screen.
    @discardableResult
    public func move(x: Double, y: Double) async throws(NanoKVMError) -> HIDPlayback {
        try await run([HIDTimedStep(0, .move(x: x, y: y))])
    }

    /// Absolute move to pixels of a `width`×`height` screen (the size of the last frame).
    @discardableResult
    public func movePixels(x: Double, y: Double, width: Int, height: Int) async throws(NanoKVMError) -> HIDPlayback {
        let (fx, fy) = try Self.fractions(pixelX: x, pixelY: y, width: width, height: height)
        return try await move(x: fx, y: fy)
    }

    /// Relative move in device units; moves beyond ±127 are split into several reports.
    @discardableResult
    public func moveBy(dx: Int, dy: Int) async throws(NanoKVMError) -> HIDPlayback {
        guard abs(dx) <= 1_000_000, abs(dy) <= 1_000_000 else { throw NanoKVMError(.usage, "move_by: at most ±1000000 units") }
        return try await run([HIDTimedStep(0, .moveBy(dx: dx, dy: dy))])
    }

    /// Clicks `button`, first moving to (x, y) (fractions) when given.
    @discardableResult
    public func click(_ button: MouseButton = .left, x: Double? = nil, y: Double? = nil) async throws(NanoKVMError) -> HIDPlayback {
        try await run(clickSteps(button, x: x, y: y, count: 1))
    }

    @discardableResult
    public func doubleClick(_ button: MouseButton = .left, x: Double? = nil, y: Double? = nil) async throws(NanoKVMError) -> HIDPlayback {
        try await run(clickSteps(button, x: x, y: y, count: 2))
    }

    @discardableResult
    public func mouseDown(_ button: MouseButton = .left) async throws(NanoKVMError) -> HIDPlayback {
        try await run([HIDTimedStep(0, .mouseDown(button))])
    }

    @discardableResult
    public func mouseUp(_ button: MouseButton = .left) async throws(NanoKVMError) -> HIDPlayback {
        try await run([HIDTimedStep(0, .mouseUp(button))])
    }

    /// Moves to (x1, y1), presses, moves in `options.steps` steps to (x2, y2), releases there.
    @discardableResult
    public func drag(fromX x1: Double, fromY y1: Double, toX x2: Double, toY y2: Double, options: DragOptions = DragOptions()) async throws(NanoKVMError) -> HIDPlayback {
        guard options.steps >= 1, options.steps <= 10_000 else { throw NanoKVMError(.usage, "drag: steps must be 1…10000") }
        guard options.stepInterval.isFinite, options.stepInterval >= 0 else { throw NanoKVMError(.usage, "drag: step interval must be ≥ 0") }
        let timing = self.options.timing
        var steps = [HIDTimedStep(0, .move(x: x1, y: y1)), HIDTimedStep(timing.moveSettle, .mouseDown(options.button))]
        var time = timing.moveSettle
        for index in 1...options.steps {
            time += options.stepInterval
            let f = Double(index) / Double(options.steps)
            let x = index == options.steps ? x2 : min(max(x1 + (x2 - x1) * f, 0), 1)
            let y = index == options.steps ? y2 : min(max(y1 + (y2 - y1) * f, 0), 1)
            steps.append(HIDTimedStep(time, .move(x: x, y: y)))
        }
        steps.append(HIDTimedStep(time + timing.moveSettle, .mouseUp(options.button)))
        return try await run(steps)
    }

    /// Wheel notches: positive `dy` scrolls down (towards the user); positive `dx` scrolls
    /// right (sent as Shift + wheel: the device has no horizontal wheel).
    @discardableResult
    public func scroll(dy: Int, dx: Int = 0) async throws(NanoKVMError) -> HIDPlayback {
        guard abs(dy) <= 100_000, abs(dx) <= 100_000 else { throw NanoKVMError(.usage, "scroll: at most ±100000 notches") }
        return try await run([HIDTimedStep(0, .scroll(dy: dy, dx: dx))])
    }

    // MARK: Sequences (macros)

    /// Plays timed steps (offsets in seconds from the start; a step never starts before the
    /// previous one ended), `loops` times, `speed` times as fast. Everything is checked before
    /// anything is sent; on failure or cancellation every key and button is released.
    @discardableResult
    public func play(_ steps: [HIDTimedStep], speed: Double = 1, loops: Int = 1) async throws(NanoKVMError) -> HIDPlayback {
        guard loops >= 1 else { throw NanoKVMError(.usage, "loops must be ≥ 1") }
        let secret = steps.contains { if case .type(_, let options) = $0.step { return options.secret } else { return false } }
        return try await run(steps, speed: speed, loops: loops, secret: secret)
    }

    /// Checks `steps` against the firmware generation without sending anything: the messages
    /// they would produce from the current state.
    public func compile(_ steps: [HIDTimedStep]) throws(NanoKVMError) -> [ScheduledHIDMessage] {
        var compiler = HIDCompiler(profile: client.profile, state: state, timing: options.timing)
        for step in steps { try compiler.append(step.step, at: step.offset) }
        return compiler.messages
    }

    // MARK: Recording

    /// Calls `callback` for every call as it starts playing (not for secret text). Returns an
    /// id for `removeObserver`.
    public func addObserver(_ callback: @escaping @Sendable (HIDCallRecord) -> Void) -> Int {
        observers.withLock { state in
            state.next += 1
            state.callbacks[state.next] = callback
            return state.next
        }
    }

    public func removeObserver(_ id: Int) {
        _ = observers.withLock { $0.callbacks.removeValue(forKey: id) }
    }

    // MARK: Closing

    /// Releases every key and button, then closes the WebSocket. Later calls raise `usage`.
    /// Waits for a call that is playing to end (cancel its task first to stop it).
    public func close() async {
        closed.withLock { $0 = true }
        let locked: Bool
        do {
            try await lock.acquire()
            locked = true
        } catch {
            locked = false
        }
        if link.openSession != nil || !state.isReleased {
            let messages = HIDCompiler.releaseMessages(profile: client.profile, state: state)
            for message in messages {
                guard (try? await link.deliver(message.message, reconnectWithin: .seconds(2))) != nil else { break }
            }
            acknowledged.withLock { $0 = HIDInputState() }
        }
        await link.close()
        if locked { lock.release() }
    }

    // MARK: Playing

    private func parse(_ specs: [String]) throws(NanoKVMError) -> [KeyChord] {
        guard !specs.isEmpty else { throw NanoKVMError(.usage, "key: give at least one key spec, e.g. \"ctrl+alt+delete\"") }
        var chords: [KeyChord] = []
        for spec in specs { chords.append(try KeyChord(parsing: spec)) }
        return chords
    }

    private func clickSteps(_ button: MouseButton, x: Double?, y: Double?, count: Int) throws(NanoKVMError) -> [HIDTimedStep] {
        let timing = options.timing
        var steps: [HIDTimedStep] = []
        var time = 0.0
        switch (x, y) {
        case let (x?, y?):
            steps.append(HIDTimedStep(0, .move(x: x, y: y)))
            time = timing.moveSettle
        case (nil, nil):
            break
        default:
            throw NanoKVMError(.usage, "click: give both x and y, or neither")
        }
        for index in 0..<count {
            if index > 0 { time += timing.doubleClickGap }
            steps.append(HIDTimedStep(time, .mouseDown(button)))
            time += timing.clickHold
            steps.append(HIDTimedStep(time, .mouseUp(button)))
        }
        return steps
    }

    static func fractions(pixelX: Double, pixelY: Double, width: Int, height: Int) throws(NanoKVMError) -> (Double, Double) {
        guard width > 0, height > 0 else { throw NanoKVMError(.usage, "the screen size is not known (no frame yet)") }
        func fraction(_ value: Double, _ size: Int, _ axis: String) throws(NanoKVMError) -> Double {
            guard value.isFinite, value >= 0, value <= Double(size - 1) else {
                throw NanoKVMError(.usage, "\(axis) = \(value) is outside the screen (0…\(size - 1) pixels)")
            }
            return size > 1 ? value / Double(size - 1) : 0
        }
        return (try fraction(pixelX, width, "x"), try fraction(pixelY, height, "y"))
    }

    /// Compiles and plays `steps` as one call. `gap` separates consecutive steps that have no
    /// explicit offset.
    private func run(
        _ steps: [HIDTimedStep], gap: Double = 0, speed: Double = 1, loops: Int = 1, secret: Bool = false
    ) async throws(NanoKVMError) -> HIDPlayback {
        if closed.withLock({ $0 }) { throw NanoKVMError(.usage, "the keyboard/mouse connection is closed", device: client.baseURL) }
        try await lock.acquire()
        defer { lock.release() }
        if closed.withLock({ $0 }) { throw NanoKVMError(.usage, "the keyboard/mouse connection is closed", device: client.baseURL) }
        var compiler = HIDCompiler(profile: client.profile, state: state, timing: options.timing)
        for loop in 0..<loops {
            let base = loop == 0 ? 0 : compiler.end
            for (index, step) in steps.enumerated() {
                let offset = base + step.offset
                let earliest = index > 0 && gap > 0 ? compiler.end + gap : 0
                try compiler.append(step.step, at: max(offset, earliest))
            }
        }
        if !secret { notify(steps) }
        do {
            return try await HIDReportPlayer.play(compiler.messages, speed: speed, secret: secret, sink: link) { state in
                acknowledged.withLock { $0 = state }
            }
        } catch {
            await releaseAfterFailure()
            throw error
        }
    }

    private func notify(_ steps: [HIDTimedStep]) {
        let callbacks = observers.withLock { Array($0.callbacks.values) }
        guard !callbacks.isEmpty else { return }
        let record = HIDCallRecord(time: MonotonicClock.now(), steps: steps)
        for callback in callbacks { callback(record) }
    }

    /// After a failure or cancellation: release everything (not cancellable itself).
    private func releaseAfterFailure() async {
        let messages = HIDCompiler.releaseMessages(profile: client.profile, state: state)
        let link = self.link
        let done = await Task.detached { () -> Bool in
            for message in messages {
                guard (try? await link.deliver(message.message, reconnectWithin: .seconds(3))) != nil else { return false }
            }
            return true
        }.value
        if done { acknowledged.withLock { $0 = HIDInputState() } }
    }

    private func releaseIgnoringCancellation(_ step: HIDStep) async {
        _ = await Task.detached { [self] () -> Bool in
            (try? await self.run([HIDTimedStep(0, step)])) != nil
        }.value
    }

    /// The WebSocket dropped while no call was playing: reopen it now (keeps the heartbeat
    /// going) and, where the device released our keys on the drop (2.4.1+), press again
    /// what scripts hold with key_down/mouse_down.
    private func reconnectWhileIdle() {
        Task { [weak self] in
            guard let self else { return }
            do { try await self.lock.acquire() } catch { return }
            defer { self.lock.release() }
            guard !self.closed.withLock({ $0 }), self.link.openSession == nil else { return }
            guard (try? await self.link.prepare()) != nil else { return }
            let held = self.state
            guard self.client.profile.serverReleasesInputOnDisconnect, !held.isReleased else { return }
            for message in HIDCompiler.restoreMessages(profile: self.client.profile, state: held) {
                _ = try? await self.link.deliver(message.message, at: nil)
            }
        }
    }
}

extension HIDCompiler {
    /// Messages that re-assert `state` on a host that saw everything released.
    static func restoreMessages(profile: FirmwareProfile, state: HIDInputState) -> [ScheduledHIDMessage] {
        var out: [ScheduledHIDMessage] = []
        guard profile.generation == .current else { return out }
        if state.modifiers != 0 || !state.keys.isEmpty {
            out.append(ScheduledHIDMessage(offset: 0, message: .keyboard(state.keyboardReport), state: state))
        }
        if state.buttons != 0 {
            if state.absoluteMode, let position = state.position {
                out.append(ScheduledHIDMessage(
                    offset: 0, message: .absoluteMouse(AbsoluteMouseReport(buttons: state.buttons, x: position.x, y: position.y)), state: state))
            } else {
                out.append(ScheduledHIDMessage(offset: 0, message: .relativeMouse(RelativeMouseReport(buttons: state.buttons)), state: state))
            }
        }
        return out
    }
}

extension NanoKVMClient {
    /// A keyboard/mouse controller for this device (keep one per device).
    public func makeHIDController(_ options: HIDControllerOptions = HIDControllerOptions()) -> HIDController {
        HIDController(client: self, options: options)
    }
}

// MARK: - The connection

/// One WebSocket at a time, reopened on demand.
final class HIDLink: HIDMessageSink {
    private struct State {
        var session: HIDSession?
        var everOpened = false
        var reconnects = 0
        var leds: KeyboardLEDs?
        var closed = false
        var monitors: [Task<Void, Never>] = []
        var onDrop: (@Sendable () -> Void)?
    }

    let client: NanoKVMClient
    let heartbeat: Duration
    let reconnectTimeout: Duration
    private let state = Mutex(State())

    init(client: NanoKVMClient, heartbeat: Duration, reconnectTimeout: Duration) {
        self.client = client
        self.heartbeat = heartbeat
        self.reconnectTimeout = reconnectTimeout
    }

    func setDropHandler(_ handler: @escaping @Sendable () -> Void) { state.withLock { $0.onDrop = handler } }

    var openSession: HIDSession? { state.withLock { $0.session.flatMap { $0.isOpen ? $0 : nil } } }
    var reconnectCount: Int { state.withLock { $0.reconnects } }
    var keyboardLEDs: KeyboardLEDs? { state.withLock { $0.leds } }

    func prepare() async throws(NanoKVMError) {
        _ = try await session(within: reconnectTimeout)
    }

    func deliver(_ message: HIDMessage, at deadline: Double?) async throws(NanoKVMError) -> (receipt: HIDSendReceipt, reconnected: Bool) {
        try await deliver(message, at: deadline, reconnectWithin: reconnectTimeout)
    }

    /// Writes `message` (at `deadline`), reopening the WebSocket (for up to `window`) when it is
    /// closed or the write fails; the message is written again, at once, on the new connection.
    func deliver(
        _ message: HIDMessage, at deadline: Double? = nil, reconnectWithin window: Duration
    ) async throws(NanoKVMError) -> (receipt: HIDSendReceipt, reconnected: Bool) {
        var reconnected = false
        var failures = 0
        while true {
            let (session, fresh) = try await session(within: window)
            reconnected = reconnected || fresh
            do {
                let receipt = try await session.send(message, at: reconnected ? nil : deadline)
                return (receipt, reconnected)
            } catch {
                guard error.kind == .transport else { throw error }
                // The write did not complete: the message goes out again on a new connection.
                failures += 1
                state.withLock { if $0.session === session { $0.session = nil } }
                if failures >= 5 { throw error }
            }
        }
    }

    /// The open session, or a new one (`fresh` when it replaces an earlier one). Transport
    /// failures and timeouts are retried with a growing pause for up to `window`.
    private func session(within window: Duration) async throws(NanoKVMError) -> (HIDSession, fresh: Bool) {
        if let session = openSession { return (session, false) }
        let giveUp = MonotonicClock.now() + window.seconds
        var pause = 0.05
        while true {
            if state.withLock({ $0.closed }) { throw NanoKVMError(.usage, "the keyboard/mouse connection is closed", device: client.baseURL) }
            if Task.isCancelled { throw NanoKVMError(.cancelled, "cancelled") }
            do throws(NanoKVMError) {
                let session = try await client.openHIDSession(HIDSessionOptions(heartbeatInterval: heartbeat))
                let (fresh, close) = state.withLock { state -> (Bool, Bool) in
                    if state.closed { return (false, true) }
                    let fresh = state.everOpened
                    state.everOpened = true
                    if fresh { state.reconnects += 1 }
                    state.session = session
                    return (fresh, false)
                }
                if close {
                    await session.close(releaseInput: false)
                    throw NanoKVMError(.usage, "the keyboard/mouse connection is closed", device: client.baseURL)
                }
                monitor(session)
                return (session, fresh)
            } catch {
                guard error.kind == .transport || error.kind == .timeout else { throw error }
                let now = MonotonicClock.now()
                guard now + pause < giveUp else {
                    throw NanoKVMError(
                        .transport, "the keyboard/mouse WebSocket could not be reopened within \(TransportErrors.formatSeconds(window)): \(error.message)",
                        path: "/api/ws", device: client.baseURL)
                }
                do {
                    try await Task.sleep(nanoseconds: UInt64(pause * 1e9))
                } catch {
                    throw NanoKVMError(.cancelled, "cancelled")
                }
                pause = min(pause * 2, 3)
            }
        }
    }

    /// Reads the session's events: LED state, and the drop.
    private func monitor(_ session: HIDSession) {
        let task = Task { [weak self] in
            for await event in session.events {
                switch event {
                case .keyboardLEDs(let leds):
                    self?.state.withLock { $0.leds = leds }
                case .closed(let info):
                    guard let self else { return }
                    let handler = self.state.withLock { state -> (@Sendable () -> Void)? in
                        if state.session === session { state.session = nil }
                        return state.closed || info.closedByClient ? nil : state.onDrop
                    }
                    handler?()
                default:
                    break
                }
            }
        }
        // Earlier monitors end with their session's events; only the current one is kept.
        state.withLock { $0.monitors = [task] }
    }

    func close() async {
        let (session, monitors) = state.withLock { state -> (HIDSession?, [Task<Void, Never>]) in
            state.closed = true
            let session = state.session
            state.session = nil
            let monitors = state.monitors
            state.monitors = []
            return (session, monitors)
        }
        await session?.close(releaseInput: false)
        for task in monitors { task.cancel() }
    }
}

// MARK: - FIFO call lock

/// Lets one call play at a time, in the order they came; waiting can be cancelled.
final class HIDCallLock: Sendable {
    private struct State {
        var held = false
        var nextID = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    private let state = Mutex(State())

    func acquire() async throws(NanoKVMError) {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let resume = state.withLock { state -> Bool? in
                        if Task.isCancelled { return false }
                        if !state.held {
                            state.held = true
                            return true
                        }
                        state.waiters.append((id, continuation))
                        return nil
                    }
                    switch resume {
                    case true?: continuation.resume()
                    case false?: continuation.resume(throwing: CancellationError())
                    case nil: break
                    }
                }
            } onCancel: {
                let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                waiter?.resume(throwing: CancellationError())
            }
        } catch {
            throw NanoKVMError(.cancelled, "cancelled")
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }
}
