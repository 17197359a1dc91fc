import NanoKVM
import NanoKVMSimulator
import Testing

/// What the device hears of a macro's timing: every report's time after the first one received
/// against the schedule's offsets (the device has no other reference). The first report used to
/// be written at once from the calling thread while every later one was written by the event
/// loop's timer at its deadline, so it arrived late relative to all the others (issue 11).
@Suite("Macro timing as the device hears it", .serialized, .timeLimit(.minutes(1)))
struct MacroTimingTests {
    @Test("The first step is scheduled like the others", arguments: bothGenerations)
    func firstStep(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            _ = try await hid.type("w", options: TypingOptions(delay: 0))  // the connection is open and warm
            let steps = 21
            var text = ""
            for index in 0..<steps {
                text += "\(Double(index) * 0.01) \(index % 2 == 0 ? "key_down" : "key_up") KeyA\n"
            }
            let macro = try Macro.parse(text).hidSteps()
            // A stall of a loaded machine can hit any one report, the first included: the
            // offset of the first report shows in every play, a stall only in one.
            var medians: [Double] = []
            for _ in 0..<5 {
                try await Task.sleep(for: .milliseconds(50))
                simulator.clearReports()
                let called = MonotonicClock.now()
                let playback = try await hid.play(macro)
                // The mechanism: the first message is handed over ahead of its deadline like every
                // later one, so the event loop's timer writes it (not this thread, at once).
                #expect(playback.timings[0].deadline - called >= 0.004, "the first deadline lies ahead of the call")
                var received: [SimulatorReport] = []
                for _ in 0..<100 {
                    received = simulator.reports.filter { $0.source == .webSocket }
                    if received.count >= playback.count { break }
                    try await Task.sleep(for: .milliseconds(10))
                }
                try #require(received.count == playback.count, "every report arrived")
                let firstHeard = Double(received[0].monotonicNanoseconds) / 1e9
                let firstDeadline = playback.timings[0].deadline
                let errors = zip(playback.timings, received).dropFirst().map { timing, report in
                    (Double(report.monotonicNanoseconds) / 1e9 - firstHeard) - (timing.deadline - firstDeadline)
                }.sorted()
                medians.append(errors[errors.count / 2])
            }
            // The precise figures (idle and loaded machine) come from Benchmarks/macro-timing; here
            // only what holds on any machine, however loaded (a stall of the simulator's own
            // threads shifts its timestamps by milliseconds): the typical play within 10 ms.
            let typical = medians.map(abs).sorted()[medians.count / 2]
            #expect(typical <= 0.01, "median error relative to the first report, ms per play: \(medians.map { ($0 * 1e6).rounded() / 1e3 })")
            await hid.close()
        }
    }
}
