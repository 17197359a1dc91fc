// The timed-sequence engine (issue 5, reused by macros): sends scheduled messages against the
// monotonic clock with absolute deadlines (`start + offset / speed`, never accumulated sleeps;
// the task sleeps until shortly before each deadline, the WebSocket's event loop writes at it),
// records when each one was written, and after a reconnect re-bases the schedule on the
// message that was resent so the remaining spacing is kept. What to do when it fails
// (releasing everything) is the caller's business: see HIDController.

/// Where a player's messages go: one frame per message, resent on a new connection when the
/// old one failed before the write completed.
protocol HIDMessageSink: Sendable {
    /// Makes sure a connection is open (so the first deadline is not spent connecting).
    func prepare() async throws(NanoKVMError)
    /// Writes `message` at `deadline` (`MonotonicClock` seconds, nil = now); `reconnected` is
    /// true when a new connection had to be opened first (the message then goes out at once).
    func deliver(_ message: HIDMessage, at deadline: Double?) async throws(NanoKVMError) -> (receipt: HIDSendReceipt, reconnected: Bool)
}

/// When one scheduled message was written.
public struct HIDReportTiming: Sendable, Equatable {
    /// Its deadline, `MonotonicClock` seconds (after any re-basing for a reconnect).
    public var deadline: Double
    /// Sequence number (per connection) and the time the write completed.
    public var receipt: HIDSendReceipt
    /// The message; nil for secret text.
    public var message: HIDMessage?

    /// How late the write completed, in seconds.
    public var lateness: Double { receipt.writtenAt - deadline }
}

/// The outcome of playing a sequence.
public struct HIDPlayback: Sendable {
    /// `MonotonicClock` time of the first deadline.
    public var started: Double
    /// One entry per message, in order.
    public var timings: [HIDReportTiming]
    /// Connections reopened while playing.
    public var reconnects: Int
    /// The input state at the end.
    public var finalState: HIDInputState

    /// Messages sent.
    public var count: Int { timings.count }
    /// Seconds from the first deadline to the last write.
    public var duration: Double { (timings.last?.receipt.writtenAt ?? started) - started }
}

enum HIDReportPlayer {
    /// Sends `messages` at `start + offset / speed`. `acknowledge` is called with each
    /// message's state once its write completed. Cancellation (Swift task cancel) raises
    /// `cancelled` between messages; a failure raises what the sink raised.
    static func play(
        _ messages: [ScheduledHIDMessage], speed: Double, secret: Bool, sink: some HIDMessageSink,
        acknowledge: (HIDInputState) -> Void
    ) async throws(NanoKVMError) -> HIDPlayback {
        guard speed.isFinite, speed > 0 else { throw NanoKVMError(.usage, "speed must be a number > 0") }
        try await sink.prepare()
        // The schedule starts one hand-over ahead, so the first message goes out exactly like
        // every later one (handed over before its deadline, written by the event loop's timer
        // at it). Started at "now" it would be written at once from this thread instead, which
        // lands it later, relative to the rest, than the schedule says: and the first report is
        // the reference the device hears every later step against (issue 11).
        var base = MonotonicClock.now() + handOver
        let started = base
        var timings: [HIDReportTiming] = []
        timings.reserveCapacity(messages.count)
        var reconnects = 0
        var state = messages.first?.state ?? HIDInputState()
        for scheduled in messages {
            let offset = scheduled.offset / speed
            var deadline = base + offset
            // Sleep to shortly before the deadline; the connection's event loop writes at it.
            try await wait(until: deadline - handOver)
            if Task.isCancelled { throw NanoKVMError(.cancelled, "cancelled") }
            let (receipt, reconnected) = try await sink.deliver(scheduled.message, at: deadline)
            if reconnected {
                // Keep the spacing of what follows: this message counts as sent on time.
                reconnects += 1
                base = receipt.writtenAt - offset
                deadline = receipt.writtenAt
            }
            state = scheduled.state
            acknowledge(state)
            timings.append(HIDReportTiming(deadline: deadline, receipt: receipt, message: secret ? nil : scheduled.message))
        }
        return HIDPlayback(started: started, timings: timings, reconnects: reconnects, finalState: state)
    }

    /// How long before a deadline the message is handed to the event loop, whose timer then
    /// writes it (one thread wake-up between the deadline and the socket write).
    static let handOver = 0.005

    /// Sleeps until `deadline` (MonotonicClock seconds). The sleep ends a little early and the
    /// last tens of microseconds are spun, which keeps the error well under a millisecond
    /// without burning a core (a longer spin loses to preemption on a busy machine).
    static func wait(until deadline: Double) async throws(NanoKVMError) {
        let spin = 0.00005
        while true {
            if Task.isCancelled { throw NanoKVMError(.cancelled, "cancelled") }
            let remaining = deadline - MonotonicClock.now()
            if remaining <= 0 { return }
            if remaining <= spin {
                while MonotonicClock.now() < deadline {}
                return
            }
            do {
                try await Task.sleep(nanoseconds: UInt64((remaining - spin) * 1e9))
            } catch {
                throw NanoKVMError(.cancelled, "cancelled")
            }
        }
    }
}
