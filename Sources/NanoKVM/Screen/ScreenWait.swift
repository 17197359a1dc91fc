// Waiting for the screen: until it differs from what it showed at the call (`waitChange`), or
// until it has stopped changing (`waitStill`). Frames come from the shared stream; a change is
// a fraction of pixels above `threshold` whose colour moved by more than the per-pixel JPEG
// noise tolerance (`Frame.noiseTolerance`), inside an optional area. No frames at all (frame
// detection with a static screen) means no change.

extension FrameSource {
    /// What a wait that ignores regions returns: the frame, and the regions it ignored (the
    /// `ignore` areas and the learned self-changing ones), in frame pixels.
    public struct MaskedWaitResult: Sendable {
        public let frame: Frame?
        public let ignored: [PixelRect]
        public let learned: [PixelRect]
    }

    /// Waits until the screen differs from the frame current at the call (the newest frame of
    /// the open stream, else the next one) by more than `threshold` of the pixels in `area`;
    /// returns the new frame. Raises `timeout` (also when no frame comes at all), `cancelled`
    /// when the task is cancelled, `usage` for bad arguments. See `waitChangeIgnoring`.
    public func waitChange(
        area: ScreenArea = .full, threshold: Double = Frame.defaultChangeThreshold, timeout: Duration = .seconds(10),
        ignore: [ScreenArea] = [], ignoreSelfChanging: Bool = false
    ) async throws(NanoKVMError) -> Frame {
        let result = try await waitChangeIgnoring(area: area, threshold: threshold, timeout: timeout, ignore: ignore, ignoreSelfChanging: ignoreSelfChanging)
        guard let frame = result.frame else { throw unchanged(timeout) }  // safe: waitChangeIgnoring always returns a frame
        return frame
    }

    /// The mask of `ignore` plus, when `learn`, the self-changing cells seen in the stream's
    /// recent frames; `settle` tells that there was no usable history.
    func motionMask(width: Int, height: Int, ignore: [ScreenArea], learn: Bool) -> (mask: MotionMask, settle: Bool) {
        var mask = MotionMask(width: width, height: height, ignore: ignore)
        guard learn else { return (mask, false) }
        let history = recentFrames
        guard history.count >= 4, let first = history.first, let last = history.last, last.time - first.time >= 1 else { return (mask, true) }
        mask.learn(from: history)
        return (mask, false)
    }

    /// `waitChange` that tells which regions it ignored. Learning is off by default here (the
    /// Lua API turns it on): typing again and again at one spot between waits looks like a
    /// blinking cursor to it (three changes of the same cells over a second or more). Changes inside `ignore` (areas) never
    /// count; with `ignoreSelfChanging`, neither do regions that keep changing by themselves
    /// (MotionHistory): learned from the stream's last 3.5 s when it was open, else from the
    /// first `MotionHistory.settle` seconds of the wait (a change that appears during them and
    /// is not self-changing is returned at their end).
    public func waitChangeIgnoring(
        area: ScreenArea = .full, threshold: Double = Frame.defaultChangeThreshold, timeout: Duration = .seconds(10),
        ignore: [ScreenArea] = [], ignoreSelfChanging: Bool = false
    ) async throws(NanoKVMError) -> MaskedWaitResult {
        try Self.checkThreshold(threshold)
        try Self.checkTimeout(timeout)
        let start = MonotonicClock.now()
        let deadline = start + timeout.seconds
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
        let referencePixels = try reference.pixels()
        var (mask, settle) = motionMask(width: reference.width, height: reference.height, ignore: ignore, learn: ignoreSelfChanging)
        func changed(_ frame: Frame) -> Bool {
            guard frame.width == reference.width, frame.height == reference.height else { return true }
            guard !mask.isEmpty else { return ((try? frame.diff(reference, area: area)) ?? 0) > threshold }
            guard let pixels = try? frame.pixels() else { return false }
            let masked = Frame(image: mask.masked(pixels, with: referencePixels), time: frame.time)
            return ((try? masked.diff(Frame(image: referencePixels, time: reference.time), area: area)) ?? 0) > threshold
        }
        func result(_ frame: Frame) -> MaskedWaitResult { MaskedWaitResult(frame: frame, ignored: mask.regions, learned: mask.learnedRegions) }
        if settle {
            // No history: watch first, then judge what changed.
            let settleEnd = min(start + MotionHistory.settle, deadline)
            var seen = [reference]
            while MonotonicClock.now() < settleEnd {
                switch try await subscription.receive(until: settleEnd) {
                case .frame(let frame): seen.append(frame)
                case .timedOut: break
                case .ended, .busy: throw streamEnded()
                }
            }
            mask.learn(from: seen)
            settle = false
            if let newest = seen.last, seen.count > 1, changed(newest) { return result(newest) }
            if MonotonicClock.now() >= deadline { throw unchanged(timeout) }
        }
        while true {
            switch try await subscription.receive(until: deadline) {
            case .frame(let frame):
                if changed(frame) { return result(frame) }
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
    /// changing until `timeout`, `cancelled`, `usage`. See `waitStillIgnoring`.
    public func waitStill(
        seconds: Double = 2, area: ScreenArea = .full, threshold: Double = Frame.defaultChangeThreshold,
        timeout: Duration = .seconds(30), ignore: [ScreenArea] = [], ignoreSelfChanging: Bool = false
    ) async throws(NanoKVMError) -> Frame? {
        try await waitStillIgnoring(
            seconds: seconds, area: area, threshold: threshold, timeout: timeout, ignore: ignore, ignoreSelfChanging: ignoreSelfChanging
        ).frame
    }

    /// `waitStill` that ignores `ignore` and (with `ignoreSelfChanging`) the self-changing
    /// regions learned from the stream's recent frames, and tells which. Without history it
    /// learns while it waits: from the frames of its first `MotionHistory.settle` seconds.
    public func waitStillIgnoring(
        seconds: Double = 2, area: ScreenArea = .full, threshold: Double = Frame.defaultChangeThreshold,
        timeout: Duration = .seconds(30), ignore: [ScreenArea] = [], ignoreSelfChanging: Bool = false
    ) async throws(NanoKVMError) -> MaskedWaitResult {
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
        var mask: MotionMask?
        var settling = false
        var seen: [Frame] = []
        if let reference {
            let made = motionMask(width: reference.width, height: reference.height, ignore: ignore, learn: ignoreSelfChanging)
            mask = made.mask
            settling = made.settle
            if settling { seen = [reference] }
        }
        func differs(_ frame: Frame, _ base: Frame) -> Bool {
            guard let mask, !mask.isEmpty, frame.width == base.width, frame.height == base.height,
                let pixels = try? frame.pixels(), let basePixels = try? base.pixels()
            else { return ((try? frame.diff(base, area: area)) ?? 1) > threshold }
            let masked = Frame(image: mask.masked(pixels, with: basePixels), time: frame.time)
            return ((try? masked.diff(Frame(image: basePixels, time: base.time), area: area)) ?? 1) > threshold
        }
        func result(_ frame: Frame?) -> MaskedWaitResult {
            MaskedWaitResult(frame: frame, ignored: mask?.regions ?? [], learned: mask?.learnedRegions ?? [])
        }
        while true {
            let stillEnd = stillSince + seconds
            if stillEnd > deadline && MonotonicClock.now() >= deadline { throw stillTimeout(timeout) }
            switch try await subscription.receive(until: min(stillEnd, deadline)) {
            case .frame(let frame):
                newest = frame
                if mask == nil {
                    let made = motionMask(width: frame.width, height: frame.height, ignore: ignore, learn: ignoreSelfChanging)
                    mask = made.mask
                    settling = made.settle
                }
                if settling {
                    seen.append(frame)
                    if frame.time - start >= MotionHistory.settle {
                        settling = false
                        if mask?.learn(from: seen) == true {
                            // Judge the settle again with what was learned.
                            var base = seen[0]
                            stillSince = start
                            for next in seen.dropFirst() where differs(next, base) {
                                base = next
                                stillSince = next.time
                            }
                            reference = base
                        }
                        seen = []
                    }
                }
                if let base = reference {
                    if differs(frame, base) {
                        reference = frame
                        stillSince = frame.time
                        if MonotonicClock.now() >= deadline { throw stillTimeout(timeout) }
                        continue
                    }
                } else {
                    reference = frame
                }
                let now = MonotonicClock.now()
                if now >= stillEnd { return result(newest) }
                if now >= deadline { throw stillTimeout(timeout) }
            case .timedOut:
                if MonotonicClock.now() >= stillEnd - 0.001 && stillEnd <= deadline + 0.001 { return result(newest) }
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
