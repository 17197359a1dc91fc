// Macro playback timing: a 1,000-step macro spread over 10 s, played by HIDController against
// a simulator; each report's receive time on the simulated host (CLOCK_MONOTONIC) next to its
// scheduled offset, and relative to the first received report (what a device hears: issue 11).
// Goals: p99 ≤ 1 ms on loopback; relative to the first report p50 ≤ 0.1 ms, p99 ≤ 1 ms.
//
//   swift run -c release MacroBenchmark [steps] [seconds] [current|legacy]
//
// The macro alternates key_down/key_up of letters at even spacing, so every step is one report.

import NanoKVM
import NanoKVMSimulator

#if canImport(Glibc)
import Glibc
#endif

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
}

func ms(_ seconds: Double) -> String { String((seconds * 1_000_000).rounded() / 1000) }

func line(_ text: String) {
    print(text)
    fflush(nil)
}

@main
struct MacroBenchmark {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let steps = arguments.first.flatMap { Int($0) } ?? 1000
        let seconds = arguments.dropFirst().first.flatMap { Double($0) } ?? 10
        let generation = arguments.dropFirst(2).first.flatMap { SimulatorGeneration(rawValue: $0) } ?? .current
        do {
            try await run(steps: steps, seconds: seconds, generation: generation)
        } catch {
            line("MacroBenchmark failed: \(error)")
            exit(1)
        }
    }

    static func run(steps count: Int, seconds: Double, generation: SimulatorGeneration) async throws {
        var configuration = SimulatorConfiguration(generation: generation, loginDelayScale: 0, timeScale: 1, inspection: true)
        configuration.fps = 10
        let simulator = NanoKVMSimulator(configuration: configuration)
        try await simulator.start()
        let client = try await NanoKVMClient.connect(
            ConnectionOptions(url: simulator.baseURL, username: configuration.username, password: configuration.password))
        let hid = client.makeHIDController()
        _ = try await hid.type("warm up\n", options: TypingOptions(delay: 0))

        var text = ""
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        for index in 0..<count {
            let offset = seconds * Double(index) / Double(max(1, count - 1))
            let letter = letters[(index / 2) % letters.count].uppercased()
            text += "\(offset) \(index % 2 == 0 ? "key_down" : "key_up") Key\(letter)\n"
        }
        let macro = try Macro.parse(text)
        let hidSteps = try macro.hidSteps()
        line("MacroBenchmark: \(macro.steps.count) steps over \(macro.duration) s, simulator \(generation.rawValue) (application \(client.version))")

        try await Task.sleep(for: .milliseconds(300))
        simulator.clearReports()
        let playback = try await hid.play(hidSteps)
        let deadline = ContinuousClock.now + .seconds(5)
        while simulator.reports.filter({ $0.source == .webSocket }).count < playback.count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let received = simulator.reports.filter { $0.source == .webSocket }
        guard received.count == playback.count else {
            throw NanoKVMError(.protocol, "\(playback.count) reports sent, \(received.count) received")
        }
        let sendErrors = playback.timings.map { abs($0.receipt.writtenAt - $0.deadline) }
        let receiveErrors = zip(playback.timings, received).map { timing, report in
            abs(Double(report.monotonicNanoseconds) / 1e9 - timing.deadline)
        }
        // What the device hears: each report's time after the first received one, against the
        // schedule's offset after the first step (the device has no other reference).
        let firstReceived = Double(received[0].monotonicNanoseconds) / 1e9
        let firstDeadline = playback.timings[0].deadline
        let relativeErrors = zip(playback.timings, received).dropFirst().map { timing, report in
            abs((Double(report.monotonicNanoseconds) / 1e9 - firstReceived) - (timing.deadline - firstDeadline))
        }
        line("")
        line("| measured at | p50 (ms) | p99 (ms) | max (ms) |")
        line("| --- | ---: | ---: | ---: |")
        line("| send (write completed) | \(ms(percentile(sendErrors, 0.5))) | \(ms(percentile(sendErrors, 0.99))) | \(ms(sendErrors.max() ?? .nan)) |")
        line("| host receive | \(ms(percentile(receiveErrors, 0.5))) | \(ms(percentile(receiveErrors, 0.99))) | \(ms(receiveErrors.max() ?? .nan)) |")
        line("| host receive, relative to the first report | \(ms(percentile(relativeErrors, 0.5))) | \(ms(percentile(relativeErrors, 0.99))) | \(ms(relativeErrors.max() ?? .nan)) |")
        let span = (received.last.map { Double($0.monotonicNanoseconds) / 1e9 } ?? 0) - (received.first.map { Double($0.monotonicNanoseconds) / 1e9 } ?? 0)
        line("")
        line("span first→last report on the host: \(ms(span)) ms (scheduled \(ms(macro.duration)) ms)")
        await hid.close()
        await client.close()
        await simulator.stop()
    }
}
