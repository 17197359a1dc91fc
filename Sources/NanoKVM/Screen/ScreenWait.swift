// Waiting for the screen: until it differs from what it showed at the call (`waitChange`), or
// until it has stopped changing (`waitStill`). Frames come from the shared stream; a change is
// a fraction of pixels above `threshold` whose colour moved by more than the per-pixel JPEG
// noise tolerance (`Frame.noiseTolerance`), inside an optional area. No frames at all (frame
// detection with a static screen) means no change.

extension FrameSource {
    /// Waits until the screen differs from the frame current at the call (the newest frame of
    /// the open stream, else the next one) by more than `threshold` of the pixels in `area`;
    /// returns the new frame. Raises `timeout` (also when no frame comes at all), `cancelled`
    /// when the task is cancelled, `usage` for bad arguments.
    public func waitChange(
        area: ScreenArea = .full, threshold: Double = Frame.defaultChangeThreshold, timeout: Duration = .seconds(10)
    ) async throws(NanoKVMError) -> Frame {
        try Self.checkThreshold(threshold)
        try Self.checkTimeout(timeout)
        let deadline = MonotonicClock.now() + timeout.seconds
        let subscription = try subscribe(bufferedFrames: 1)
        defer { subscription.close() }
        let reference: Frame
        if let latest {
            reference = latest
        } else {
            do {
                reference = try await currentFrame(subscription, deadline: deadline).frame
            } catch where error.kind == .timeout {
                throw unchanged(timeout)
            }
        }
        // The reference must decode; a frame that does not is skipped.
        _ = try reference.pixels()
        while true {
            switch try await subscription.receive(until: deadline) {
            case .frame(let frame):
                if let difference = try? frame.diff(reference, area: area), difference > threshold { return frame }
                // A frame is always waiting when comparing is slower than the stream.
                if MonotonicClock.now() >= deadline { throw unchanged(timeout) }
            case .timedOut:
                throw unchanged(timeout)
            case .ended, .busy:
                throw streamEnded()
            }
        }
    }

    /// Waits until the screen has not changed (beyond `threshold` in `area`) for `seconds`,
    /// counted from the call; returns the newest frame, or nil when the device sent none at
    /// all (frame detection on and a static screen). Raises `timeout` when the screen keeps
    /// changing until `timeout`, `cancelled`, `usage`.
    public func waitStill(
        seconds: Double = 2, area: ScreenArea = .full, threshold: Double = Frame.defaultChangeThreshold,
        timeout: Duration = .seconds(30)
    ) async throws(NanoKVMError) -> Frame? {
        guard seconds.isFinite, seconds > 0 else { throw NanoKVMError(.usage, "seconds must be a positive number, got \(seconds)") }
        try Self.checkThreshold(threshold)
        try Self.checkTimeout(timeout)
        let start = MonotonicClock.now()
        let deadline = start + timeout.seconds
        let subscription = try subscribe(bufferedFrames: 1)
        defer { subscription.close() }
        var reference = latest
        var newest = reference
        var stillSince = start
        while true {
            let stillEnd = stillSince + seconds
            if stillEnd > deadline && MonotonicClock.now() >= deadline { throw stillTimeout(timeout) }
            switch try await subscription.receive(until: min(stillEnd, deadline)) {
            case .frame(let frame):
                newest = frame
                if let base = reference {
                    let difference = (try? frame.diff(base, area: area)) ?? 1
                    if difference > threshold {
                        reference = frame
                        stillSince = frame.time
                        if MonotonicClock.now() >= deadline { throw stillTimeout(timeout) }
                        continue
                    }
                } else {
                    reference = frame
                }
                let now = MonotonicClock.now()
                if now >= stillEnd { return newest }
                if now >= deadline { throw stillTimeout(timeout) }
            case .timedOut:
                if MonotonicClock.now() >= stillEnd - 0.001 && stillEnd <= deadline + 0.001 { return newest }
                throw stillTimeout(timeout)
            case .ended, .busy:
                throw streamEnded()
            }
        }
    }

    static func checkThreshold(_ threshold: Double) throws(NanoKVMError) {
        guard threshold.isFinite, threshold >= 0, threshold < 1 else {
            throw NanoKVMError(.usage, "threshold must be a fraction of the pixels in 0…1 (e.g. 0.0002), got \(threshold)")
        }
    }

    private func unchanged(_ timeout: Duration) -> NanoKVMError {
        NanoKVMError(.timeout, "the screen did not change within \(TransportErrors.formatSeconds(timeout))", device: client.device)
    }

    private func stillTimeout(_ timeout: Duration) -> NanoKVMError {
        NanoKVMError(.timeout, "the screen kept changing for \(TransportErrors.formatSeconds(timeout))", device: client.device)
    }
}
