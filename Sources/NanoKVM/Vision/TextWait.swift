// Waiting for text: one OCR pass per frame (`TextWaiter.next`), incremental through the
// reader's band cache. Frames that arrive while a pass runs are dropped (the subscription
// buffers only the newest), so a slow pass never builds a backlog. The matching itself is the
// caller's (the Lua side matches with Lua patterns); this side raises `timeout` with the end
// of the text it last read. Optionally a key is pressed every `every` seconds while waiting
// (reaching a BIOS during POST).

import Synchronization

public final class TextWaiter: Sendable {
    public let reader: ScreenTextReader
    private let source: FrameSource
    private let subscription: FrameSubscription
    /// Monotonic deadline; nil: only one frame is read (find_text).
    private let deadline: Double?
    private let timeout: Double
    private let wanted: String
    private let state = Mutex<State>(State())
    /// The key presser's failure (a box of its own: the presser must not keep the waiter alive).
    private let pressFailure = PressFailure()

    final class PressFailure: Sendable {
        let error = Mutex<NanoKVMError?>(nil)
    }

    struct State {
        var passes = 0
        var lastText = ""
        var pressing: Task<Void, Never>?
        var closed = false
    }

    /// `timeout` nil: one frame only. `wanted` describes what is waited for (the timeout's
    /// message). `press` is called every `every` seconds until `close()`.
    public init(
        source: FrameSource, reader: ScreenTextReader, timeout: Double?, wanted: String,
        press: (@Sendable () async throws(NanoKVMError) -> Void)? = nil, every: Double = 0.2
    ) throws(NanoKVMError) {
        if let timeout { guard timeout.isFinite, timeout > 0 else { throw NanoKVMError(.usage, "timeout must be > 0, got \(timeout)") } }
        guard every.isFinite, every > 0 else { throw NanoKVMError(.usage, "every must be > 0 seconds, got \(every)") }
        self.source = source
        self.reader = reader
        self.timeout = timeout ?? 10
        self.wanted = wanted
        subscription = try source.subscribe(bufferedFrames: 1)
        deadline = timeout.map { MonotonicClock.now() + $0 }
        if let press {
            let failure = pressFailure
            let task = Task {
                while !Task.isCancelled {
                    do throws(NanoKVMError) {
                        try await press()
                    } catch {
                        if error.kind != .cancelled { failure.error.withLock { $0 = error } }
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(Int64((every * 1000).rounded())))
                }
            }
            state.withLock { $0.pressing = task }
        }
    }

    deinit { close() }

    /// The next frame read: the current one first, then each new frame until the deadline
    /// (raises `timeout`). With no timeout (one frame) the second call returns nil.
    public func next() async throws(NanoKVMError) -> (result: OCRResult, frame: Frame)? {
        let passes = state.withLock { s in
            s.passes += 1
            return s.passes
        }
        let pressError = pressFailure.error.withLock { $0 }
        if let pressError { throw pressError }
        let frame: Frame
        if passes == 1 {
            if let latest = source.latest {
                frame = latest
            } else {
                frame = try await source.currentFrame(subscription, deadline: deadline ?? MonotonicClock.now() + 10).frame
            }
        } else {
            guard let deadline else { return nil }
            if MonotonicClock.now() >= deadline { throw timedOut() }
            switch try await subscription.receive(until: deadline) {
            case .frame(let received): frame = received
            case .timedOut: throw timedOut()
            case .ended, .busy: throw source.streamEnded()
            }
        }
        let result = try await reader.read(frame)
        let text = result.text
        state.withLock { $0.lastText = text }
        return (result, frame)
    }

    /// The message of a failed one-frame search.
    public var notFoundMessage: String { "no text matching \(wanted) on the screen; it shows: \(Self.tail(state.withLock { $0.lastText }))" }

    private func timedOut() -> NanoKVMError {
        let last = state.withLock { $0.lastText }
        return NanoKVMError(
            .timeout, "no text matching \(wanted) within \(TransportErrors.formatSeconds(.milliseconds(Int64(timeout * 1000)))); the screen last read: \(Self.tail(last))",
            device: source.client.device)
    }

    /// The end of `text` (at most 200 characters, on one line), quoted.
    static func tail(_ text: String) -> String {
        let flat = text.split(whereSeparator: { $0 == "\n" }).joined(separator: " | ")
        if flat.isEmpty { return "(no text)" }
        return "'" + (flat.count > 200 ? "…" + String(flat.suffix(200)) : flat) + "'"
    }

    /// Ends the subscription and the key presses.
    public func close() {
        let task = state.withLock { s -> Task<Void, Never>? in
            s.closed = true
            defer { s.pressing = nil }
            return s.pressing
        }
        task?.cancel()
        subscription.close()
    }
}
