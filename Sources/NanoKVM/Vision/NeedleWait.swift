// openQA's assert_screen: search every needle in each new frame until one matches. Needle
// search is fast (milliseconds), so every frame is searched; frames that arrive during a
// search are dropped (the subscription keeps only the newest).

extension FrameSource {
    /// The first of `needles` that matches `frame`, else nil and the best match of each.
    public static func search(_ needles: [Needle], in frame: Frame) throws(NanoKVMError) -> (match: NeedleMatch?, best: [NeedleMatch]) {
        let gray = try GrayImage(frame: frame)
        var best: [NeedleMatch] = []
        for needle in needles {
            let result = needle.search(gray)
            if result.matched { return (result, [result]) }
            best.append(result)
        }
        return (nil, best)
    }

    /// Waits until one of `needles` matches a frame (the current one first); returns the match
    /// and the frame. Raises `timeout` naming each needle's best similarity seen.
    public func waitNeedles(_ needles: [Needle], timeout: Duration = .seconds(30)) async throws(NanoKVMError) -> (match: NeedleMatch, frame: Frame) {
        guard !needles.isEmpty else { throw NanoKVMError(.usage, "no needles to wait for (an empty list)") }
        try Self.checkTimeout(timeout)
        let deadline = MonotonicClock.now() + timeout.seconds
        let subscription = try subscribe(bufferedFrames: 1)
        defer { subscription.close() }
        var bestSeen: [String: (similarity: Double, note: String?)] = [:]
        func record(_ results: [NeedleMatch]) {
            for result in results {
                let key = result.needle.path
                if result.similarity >= bestSeen[key]?.similarity ?? -1 { bestSeen[key] = (result.similarity, result.note) }
            }
        }
        var frame: Frame
        if let latest { frame = latest } else {
            do { frame = try await currentFrame(subscription, deadline: deadline).frame } catch where error.kind == .timeout {
                throw needleTimeout(needles, bestSeen, timeout)
            }
        }
        while true {
            let found = try Self.search(needles, in: frame)
            if let match = found.match { return (match, frame) }
            record(found.best)
            // A frame is always waiting when searching is slower than the stream.
            if MonotonicClock.now() >= deadline { throw needleTimeout(needles, bestSeen, timeout) }
            switch try await subscription.receive(until: deadline) {
            case .frame(let next): frame = next
            case .timedOut: throw needleTimeout(needles, bestSeen, timeout)
            case .ended, .busy: throw streamEnded()
            }
        }
    }

    private func needleTimeout(_ needles: [Needle], _ best: [String: (similarity: Double, note: String?)], _ timeout: Duration) -> NanoKVMError {
        let parts = needles.map { needle -> String in
            guard let seen = best[needle.path] else { return "\(needle.name): no frame" }
            let required = needle.areas.filter { $0.kind != .exclude }.map(\.match).max() ?? 96
            var text = "\(needle.name): best \(Int(seen.similarity.rounded(.down)))% (needs \(Int(required)))"
            if let note = seen.note { text += " (\(note))" }
            return text
        }
        return NanoKVMError(
            .timeout, "no needle matched within \(TransportErrors.formatSeconds(timeout)): " + parts.joined(separator: "; "), device: client.device)
    }
}
