// Frames of the screen for every consumer of one client from ONE shared MJPEG stream
// (protocol §9.1). The stream opens with the first subscription and closes a short while
// (`linger`, 1 s) after the last one ends, so back-to-back screenshots reuse the connection.
// Each subscription has its own small buffer (newest frames win), an optional rate limit and
// frame count; a slow consumer never holds up the others.
//
// Frame detection (§6.5, §9.1): with detection on, a static screen sends nothing. A screenshot
// pauses detection concurrently when this client knows it is on (or the firmware ≤2.2.2 can
// pause harmlessly), and otherwise falls back to the newest frame of the open stream when
// nothing arrives: no frame means no change.

import Synchronization

extension NanoKVMClient {
    /// Frames of the screen: screenshots, iterators, waits and recordings, all from one stream.
    public var frames: FrameSource { FrameSource(client: self) }
}

public struct FrameSource: Sendable {
    let client: NanoKVMClient
    var hub: FrameHub { client.frameHub }

    /// How long the stream stays open after its last consumer ends.
    public var linger: Duration { hub.state.withLock { $0.linger } }

    /// Sets `linger` (0 closes the stream as soon as nothing consumes it).
    public func setLinger(_ linger: Duration) {
        hub.state.withLock { $0.linger = max(linger, .zero) }
    }

    /// A new consumer of the shared stream. `fps` limits the rate (frames closer together are
    /// skipped), `count` ends it after that many frames, `bufferedFrames` is how many frames
    /// wait for a slow consumer (the oldest are dropped). Call `close()` when done (dropping
    /// the last reference does it too).
    public func subscribe(fps: Double? = nil, count: Int? = nil, bufferedFrames: Int = 1) throws(NanoKVMError) -> FrameSubscription {
        if let fps {
            guard fps.isFinite, fps > 0 else { throw NanoKVMError(.usage, "fps must be a positive number, got \(fps)") }
        }
        if let count {
            guard count > 0 else { throw NanoKVMError(.usage, "count must be a positive integer, got \(count)") }
        }
        try client.checkOpen("GET", APIEndpoint.mjpegStream.path)
        let subscription = FrameSubscription(
            hub: hub, minimumInterval: fps.map { 1 / $0 }, count: count, capacity: min(max(bufferedFrames, 1), 4096))
        hub.add(subscription, client: client)
        return subscription
    }

    /// The newest frame of the open stream, if it is open and has delivered one.
    public var latest: Frame? { hub.state.withLock { $0.latest } }

    /// Frames of the last few seconds of the open stream (sampled; see `MotionHistory`).
    public var recentFrames: [Frame] { hub.state.withLock { $0.recent } }

    /// Whether the shared MJPEG stream is open (consumed, or lingering).
    public var isStreaming: Bool { hub.state.withLock { $0.stream != nil } }

    /// Current consumers of the shared stream.
    public var consumerCount: Int { hub.state.withLock { s in s.subscribers.values.filter { $0.subscription != nil }.count } }

    /// HTTP stream connections opened so far (diagnostics, tests).
    public var connectionsOpened: Int { hub.state.withLock { $0.connections } }

    /// The next frame the device sends (`dev:screenshot`). With frame detection on and a
    /// static screen the device sends nothing: detection is paused concurrently when this
    /// client knows it is on, and after a second without frames the newest frame of the open
    /// stream is returned. Raises `timeout` when no frame comes at all.
    public func screenshot(timeout: Duration = .seconds(10)) async throws(NanoKVMError) -> Frame {
        try Self.checkTimeout(timeout)
        let subscription = try subscribe(bufferedFrames: 1)
        defer { subscription.close() }
        return try await currentFrame(subscription, deadline: MonotonicClock.now() + timeout.seconds).frame
    }

    /// The next frame of `subscription`, with frame detection taken care of (see `screenshot`).
    /// `fresh` is false when it is the stream's newest frame from before the call.
    func currentFrame(_ subscription: FrameSubscription, deadline: Double) async throws(NanoKVMError) -> (frame: Frame, fresh: Bool) {
        if client.state.withLock({ $0.frameDetection }) == true { pauseDetection() }
        let grace = min(MonotonicClock.now() + 1, deadline)
        switch try await subscription.receive(until: grace) {
        case .frame(let frame): return (frame, true)
        case .ended, .busy: throw streamEnded()
        case .timedOut: break
        }
        // Nothing for a second: a static screen under frame detection, or no signal.
        if client.profile.frameDetectionToggles { pauseDetection() }  // ≤2.2.2: a no-op when off
        if let latest { return (latest, false) }
        switch try await subscription.receive(until: deadline) {
        case .frame(let frame): return (frame, true)
        case .ended, .busy: throw streamEnded()
        case .timedOut: throw noFrame(deadline: deadline)
        }
    }

    /// Pauses frame detection in the background, at most once per pause window.
    func pauseDetection() {
        let now = MonotonicClock.now()
        let toggles = client.profile.frameDetectionToggles
        let start = hub.state.withLock { s -> Bool in
            guard s.detectionPausedUntil <= now else { return false }
            s.detectionPausedUntil = now + (toggles ? 15 : 2)
            return true
        }
        guard start else { return }
        let client = self.client
        Task { try? await client.stream.pauseFrameDetection(seconds: 2) }
    }

    func streamEnded() -> NanoKVMError {
        if client.state.withLock({ $0.closed }) {
            return NanoKVMError(.usage, "the device connection is closed", method: "GET", path: APIEndpoint.mjpegStream.path, device: client.device)
        }
        return NanoKVMError(.transport, "the video stream ended", method: "GET", path: APIEndpoint.mjpegStream.path, device: client.device)
    }

    func noFrame(deadline: Double) -> NanoKVMError {
        NanoKVMError(
            .timeout,
            "no video frame arrived (is the host on with an HDMI signal? with frame detection on, a static screen sends nothing)",
            method: "GET", path: APIEndpoint.mjpegStream.path, device: client.device)
    }

    static func checkTimeout(_ timeout: Duration) throws(NanoKVMError) {
        guard timeout > .zero else { throw NanoKVMError(.usage, "timeout must be positive") }
    }
}

// MARK: - Subscription

/// One consumer of the shared stream: `next()` (or `for try await`) hands out frames.
public final class FrameSubscription: Sendable, AsyncSequence {
    public typealias Element = Frame
    public typealias Failure = NanoKVMError

    enum Outcome {
        case frame(Frame)
        case timedOut
        case ended
        /// Another task is already waiting on this subscription.
        case busy
    }

    private enum End {
        case open
        case finished
        case failed(NanoKVMError)
    }

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Outcome, Never>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var buffer: [Frame] = []
        var waiter: Waiter?
        var end = End.open
        var delivered = 0
        var dropped = 0
        var lastAccepted = -Double.infinity
        var nextWaiterID = 0
    }

    let id: Int
    let hub: FrameHub
    let minimumInterval: Double?
    let count: Int?
    let capacity: Int
    private let state = Mutex(State())

    init(hub: FrameHub, minimumInterval: Double?, count: Int?, capacity: Int) {
        self.hub = hub
        self.id = hub.makeID()
        self.minimumInterval = minimumInterval
        self.count = count
        self.capacity = capacity
    }

    deinit {
        // Never synchronously: the last reference may go away while the hub's lock is held.
        let hub = self.hub
        let id = self.id
        Task { hub.remove(id) }
    }

    /// Frames handed out so far.
    public var delivered: Int { state.withLock { $0.delivered } }
    /// Frames skipped for this consumer (rate limit, or too slow).
    public var dropped: Int { state.withLock { $0.dropped } }

    /// The next frame; nil after `count` frames or `close()`. Raises `timeout` after
    /// `timeout`, `cancelled` when the task is cancelled, and the stream's error when it fails.
    public func next(timeout: Duration? = nil) async throws(NanoKVMError) -> Frame? {
        if let timeout { try FrameSource.checkTimeout(timeout) }
        let deadline = timeout.map { MonotonicClock.now() + $0.seconds }
        switch try await receive(until: deadline) {
        case .frame(let frame): return frame
        case .ended, .busy: return nil
        case .timedOut:
            throw NanoKVMError(
                .timeout, "no video frame within \(TransportErrors.formatSeconds(timeout ?? .zero))", method: "GET",
                path: APIEndpoint.mjpegStream.path)
        }
    }

    /// Stops this consumer; a pending `next()` returns nil.
    public func close() {
        let waiter = state.withLock { s -> Waiter? in
            if case .open = s.end { s.end = .finished }
            s.buffer.removeAll()
            let w = s.waiter
            s.waiter = nil
            return w
        }
        waiter?.timer?.cancel()
        waiter?.continuation.resume(returning: .ended)
        hub.remove(id)
    }

    /// A frame from the stream (called by the hub, never under its lock).
    func offer(_ frame: Frame) {
        let waiter = state.withLock { s -> Waiter? in
            guard case .open = s.end else { return nil }
            if let minimumInterval, frame.time - s.lastAccepted < minimumInterval - 0.002 {
                s.dropped += 1
                return nil
            }
            s.lastAccepted = frame.time
            if let w = s.waiter, s.buffer.isEmpty {
                s.waiter = nil
                s.delivered += 1
                return w
            }
            s.buffer.append(frame)
            if s.buffer.count > capacity {
                s.buffer.removeFirst(s.buffer.count - capacity)
                s.dropped += 1
            }
            return nil
        }
        guard let waiter else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(returning: .frame(frame))
    }

    /// The stream failed (called by the hub): buffered frames are still handed out first.
    func fail(_ error: NanoKVMError) {
        let waiter = state.withLock { s -> Waiter? in
            guard case .open = s.end else { return nil }
            s.end = .failed(error)
            guard s.buffer.isEmpty else { return nil }
            let w = s.waiter
            s.waiter = nil
            return w
        }
        waiter?.timer?.cancel()
        waiter?.continuation.resume(returning: .ended)
    }

    /// The next frame before `deadline` (monotonic seconds; nil = none). `.ended` after
    /// `close()` or `count` frames; throws the stream's error, or `cancelled`.
    func receive(until deadline: Double?) async throws(NanoKVMError) -> Outcome {
        if Task.isCancelled { throw Self.cancelled }
        let id = state.withLock { s -> Int in
            s.nextWaiterID += 1
            return s.nextWaiterID
        }
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                let immediate = state.withLock { s -> Outcome? in
                    if let count, s.delivered >= count { return .ended }
                    if !s.buffer.isEmpty {
                        s.delivered += 1
                        return .frame(s.buffer.removeFirst())
                    }
                    switch s.end {
                    case .open: break
                    case .finished, .failed: return .ended
                    }
                    if Task.isCancelled { return .timedOut }  // turned into `cancelled` below
                    if let deadline, deadline <= MonotonicClock.now() { return .timedOut }
                    if s.waiter != nil { return .busy }
                    s.waiter = Waiter(id: id, continuation: continuation, timer: nil)
                    return nil
                }
                if let immediate {
                    continuation.resume(returning: immediate)
                    return
                }
                if let deadline {
                    let timer = Task { [weak self] in
                        let delay = deadline - MonotonicClock.now()
                        if delay > 0 { try? await Task.sleep(for: .seconds(delay)) }
                        if Task.isCancelled { return }
                        self?.expire(id)
                    }
                    let keep = state.withLock { s -> Bool in
                        guard s.waiter?.id == id else { return false }
                        s.waiter?.timer = timer
                        return true
                    }
                    if !keep { timer.cancel() }
                }
            }
        } onCancel: {
            expire(id)
        }
        if case .frame = outcome {
            if let count, delivered >= count { close() }
            return outcome
        }
        if Task.isCancelled { throw Self.cancelled }
        if case .busy = outcome {
            throw NanoKVMError(.usage, "another task is already waiting for a frame from this iterator")
        }
        if case .ended = outcome, case .failed(let error) = state.withLock({ $0.end }) { throw error }
        return outcome
    }

    private func expire(_ id: Int) {
        let waiter = state.withLock { s -> Waiter? in
            guard let w = s.waiter, w.id == id else { return nil }
            s.waiter = nil
            return w
        }
        waiter?.timer?.cancel()
        waiter?.continuation.resume(returning: .timedOut)
    }

    static let cancelled = NanoKVMError(.cancelled, "cancelled")

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = Frame
        public typealias Failure = NanoKVMError
        let subscription: FrameSubscription

        public mutating func next() async throws(NanoKVMError) -> Frame? {
            try await subscription.next()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(NanoKVMError) -> Frame? {
            try await subscription.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}

// MARK: - The shared stream

/// Per-client state of the shared stream (stored in `NanoKVMClient.frameHub`).
final class FrameHub: Sendable {
    struct Entry {
        weak var subscription: FrameSubscription?
    }

    struct State {
        var subscribers: [Int: Entry] = [:]
        var nextID = 0
        var stream: Task<Void, Never>?
        /// Bumped for each stream task; a task whose generation is stale delivers nothing.
        var generation = 0
        var lingerGeneration = 0
        var linger: Duration = .seconds(1)
        var latest: Frame?
        /// Frames of the last `MotionHistory.span` seconds, one per `MotionHistory.interval` at
        /// most: what the waits learn self-changing regions (clocks, cursors) from.
        var recent: [Frame] = []
        var sequence = 0
        var connections = 0
        var skippedFrames = 0
        var detectionPausedUntil = -Double.infinity
    }

    let state = Mutex(State())

    func makeID() -> Int {
        state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
    }

    func add(_ subscription: FrameSubscription, client: NanoKVMClient) {
        state.withLock { s in
            s.subscribers[subscription.id] = Entry(subscription: subscription)
            s.lingerGeneration += 1  // a pending linger no longer applies
            guard s.stream == nil else { return }
            s.generation += 1
            let generation = s.generation
            s.stream = Task { await Self.run(hub: self, client: client, generation: generation) }
        }
    }

    func remove(_ id: Int) {
        let (idle, linger, lingerGeneration) = state.withLock { s -> (Bool, Duration, Int) in
            guard s.subscribers.removeValue(forKey: id) != nil else { return (false, .zero, 0) }
            s.subscribers = s.subscribers.filter { $0.value.subscription != nil }
            guard s.subscribers.isEmpty, s.stream != nil else { return (false, .zero, 0) }
            s.lingerGeneration += 1
            return (true, s.linger, s.lingerGeneration)
        }
        guard idle else { return }
        if linger <= .zero {
            stopIfIdle(lingerGeneration)
        } else {
            Task { [weak self] in
                try? await Task.sleep(for: linger)
                self?.stopIfIdle(lingerGeneration)
            }
        }
    }

    private func stopIfIdle(_ lingerGeneration: Int) {
        let task = state.withLock { s -> Task<Void, Never>? in
            guard s.lingerGeneration == lingerGeneration, s.subscribers.values.allSatisfy({ $0.subscription == nil }) else { return nil }
            s.subscribers = [:]
            let task = s.stream
            s.stream = nil
            s.latest = nil
            s.recent = []
            s.generation += 1
            return task
        }
        task?.cancel()
    }

    /// Hands a frame to every subscriber; false when this stream task is no longer current.
    private func deliver(_ jpeg: [UInt8], time: Double, generation: Int) -> Bool {
        let result = state.withLock { s -> (Frame, [FrameSubscription])?? in
            guard s.generation == generation, s.stream != nil else { return .some(nil) }
            guard let frame = try? Frame(jpeg: jpeg, time: time, sequence: s.sequence + 1) else {
                s.skippedFrames += 1
                return nil
            }
            s.sequence += 1
            s.latest = frame
            if time - (s.recent.last?.time ?? -Double.infinity) >= MotionHistory.interval {
                s.recent.append(frame)
                s.recent.removeAll { $0.time < time - MotionHistory.span }
            }
            return (frame, s.subscribers.values.compactMap { $0.subscription })
        }
        guard let result else { return true }  // skipped an unreadable part
        guard let (frame, subscribers) = result else { return false }
        for subscriber in subscribers { subscriber.offer(frame) }
        return true
    }

    private func hasSubscribers(_ generation: Int) -> Bool {
        state.withLock { s in s.generation == generation && s.subscribers.values.contains { $0.subscription != nil } }
    }

    private func streamFailed(_ error: NanoKVMError, generation: Int) {
        let subscribers = state.withLock { s -> [FrameSubscription] in
            guard s.generation == generation else { return [] }
            s.stream = nil
            s.latest = nil
            s.recent = []
            s.generation += 1
            let list = s.subscribers.values.compactMap { $0.subscription }
            s.subscribers = [:]
            return list
        }
        for subscriber in subscribers { subscriber.fail(error) }
    }

    /// The stream task: reads the MJPEG stream and fans its frames out. A connection that
    /// delivered frames and then dropped is reopened once at once (session renewal on the
    /// multi-user firmware ends streams); any other failure ends every subscription with it.
    private static func run(hub: FrameHub, client: NanoKVMClient, generation: Int) async {
        let path = APIEndpoint.mjpegStream.path
        while !Task.isCancelled {
            hub.state.withLock { $0.connections += 1 }
            var delivered = 0
            var failure: NanoKVMError
            do {
                for try await part in client.stream.mjpeg(MJPEGStreamOptions(stallTimeout: nil, bufferedFrames: 4)) {
                    delivered += 1
                    guard hub.deliver(part.jpeg, time: part.receivedAt, generation: generation) else { return }
                }
                failure = NanoKVMError(.transport, "the device ended the video stream", method: "GET", path: path, device: client.device)
            } catch let error as NanoKVMError {
                failure = error
            } catch {
                failure = TransportErrors.map(error, method: "GET", path: path, device: client.device, timeout: nil)
            }
            if Task.isCancelled { return }
            if client.state.withLock({ $0.closed }) {
                failure = NanoKVMError(.usage, "the device connection is closed", method: "GET", path: path, device: client.device)
            } else if delivered > 0, failure.kind == .transport || failure.kind == .protocol, hub.hasSubscribers(generation) {
                continue
            }
            hub.streamFailed(failure, generation: generation)
            return
        }
    }
}
