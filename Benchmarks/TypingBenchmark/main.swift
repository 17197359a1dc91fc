// Typing over the WebSocket (HIDController.type) next to the device's own paste endpoint, in
// the same run, against a simulator with real device timing (timeScale 1: paste sleeps 30 ms
// per character as the firmware does).
//
//   swift run -c release --scratch-path .build-hid TypingBenchmark [characters] [generation]
//
// Reported:
// - characters per second: `type` with delay 0, `type` with the default delay (0.01 s), and
//   `POST /api/hid/paste` (split into the requests the firmware accepts);
// - how far each report's send time is from its scheduled deadline (p50/p99/max), measured
//   twice: with the send receipts (write completed on our socket) and with the simulator's
//   receive timestamps (CLOCK_MONOTONIC when its virtual host got the report). With delay 0
//   every deadline is the start, so that column is the queueing delay, not an error.
// Every run also checks that the host's transcript is exactly the text.

import NanoKVM
import NanoKVMSimulator

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func sample(count: Int) -> String {
    let pool = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_!?()[]{}@#$%&*+=/\\'\"<>|~`^\n\t")
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    var text = ""
    for _ in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        text.append(pool[Int(state % UInt64(pool.count))])
    }
    return text
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let index = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
    return sorted[index]
}

func ms(_ seconds: Double) -> String {
    let value = (seconds * 1000 * 1000).rounded() / 1000
    return String(value)
}

func line(_ text: String) {
    print(text)
    fflush(nil)
}

struct Row {
    var name: String
    var charsPerSecond: Double
    var sendErrors: [Double]
    var receiveErrors: [Double]
}

@main
struct TypingBenchmark {
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst()
        let count = arguments.first.flatMap { Int($0) } ?? 1000
        let generation = arguments.dropFirst().first.flatMap { SimulatorGeneration(rawValue: $0) } ?? .current
        do {
            try await run(count: count, generation: generation)
        } catch {
            line("TypingBenchmark failed: \(error)")
            exit(1)
        }
    }

    static func run(count: Int, generation: SimulatorGeneration) async throws {
        var configuration = SimulatorConfiguration(generation: generation, loginDelayScale: 0, timeScale: 1, inspection: true)
        configuration.fps = 10
        let simulator = NanoKVMSimulator(configuration: configuration)
        try await simulator.start()
        let client = try await NanoKVMClient.connect(
            ConnectionOptions(url: simulator.baseURL, username: configuration.username, password: configuration.password))
        let hid = client.makeHIDController()
        let text = sample(count: count)
        line("TypingBenchmark: \(count) characters, simulator \(generation.rawValue) (application \(client.version)), timeScale 1")

        // Warm up the connection and the code paths.
        _ = try await hid.type("warm up\n", options: TypingOptions(delay: 0))

        var rows: [Row] = []
        for delay in [0.0, 0.01] {
            try await waitQuiet(simulator)
            simulator.clearReports()
            let before = simulator.transcript
            let start = MonotonicClock.now()
            let playback = try await hid.type(text, options: TypingOptions(delay: delay))
            let end = MonotonicClock.now()
            try await waitFor(simulator, count: playback.count)
            let received = simulator.reports.filter { $0.source == .webSocket }
            guard simulator.transcript == before + text else { throw BenchmarkError("type (delay \(delay)): the host's text differs") }
            guard received.count == playback.count else {
                throw BenchmarkError("type: \(playback.count) reports sent, \(received.count) received")
            }
            let sendErrors = playback.timings.map { $0.receipt.writtenAt - $0.deadline }
            let receiveErrors = zip(playback.timings, received).map { timing, report in
                Double(report.monotonicNanoseconds) / 1e9 - timing.deadline
            }
            rows.append(Row(
                name: "type, delay \(delay == 0 ? "0" : String(delay)) s", charsPerSecond: Double(count) / (end - start),
                sendErrors: sendErrors, receiveErrors: receiveErrors))
        }

        try await waitQuiet(simulator)
        simulator.clearReports()
        let before = simulator.transcript
        let pasteStart = MonotonicClock.now()
        let requests = try await client.hid.paste(text)
        let pasteEnd = MonotonicClock.now()
        guard simulator.transcript == before + text else { throw BenchmarkError("paste: the host's text differs") }
        rows.append(Row(name: "paste (\(requests) requests)", charsPerSecond: Double(count) / (pasteEnd - pasteStart), sendErrors: [], receiveErrors: []))

        let pasteRate = rows.last?.charsPerSecond ?? 1
        line("")
        line("| method | chars/s | × paste | send − deadline p50 / p99 / max (ms) | host receive − deadline p50 / p99 / max (ms) |")
        line("| --- | ---: | ---: | --- | --- |")
        for row in rows {
            func stats(_ values: [Double]) -> String {
                values.isEmpty ? "–" : "\(ms(percentile(values, 0.5))) / \(ms(percentile(values, 0.99))) / \(ms(values.max() ?? .nan))"
            }
            let rate = (row.charsPerSecond * 10).rounded() / 10
            let ratio = (row.charsPerSecond / pasteRate * 10).rounded() / 10
            line("| \(row.name) | \(rate) | \(ratio) | \(stats(row.sendErrors)) | \(stats(row.receiveErrors)) |")
        }
        line("")
        line("delay 0: every deadline is the start, so its columns are queueing delay; delay 0.01 s: the timing error.")
        await hid.close()
        await client.close()
        await simulator.stop()
    }

    /// Waits until the simulator has received `count` WebSocket reports.
    static func waitFor(_ simulator: NanoKVMSimulator, count: Int) async throws {
        let deadline = MonotonicClock.now() + 10
        while simulator.reports.filter({ $0.source == .webSocket }).count < count {
            guard MonotonicClock.now() < deadline else { throw BenchmarkError("the simulator did not receive every report") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits until no report arrived for 200 ms.
    static func waitQuiet(_ simulator: NanoKVMSimulator) async throws {
        var last = -1
        var since = MonotonicClock.now()
        while true {
            let count = simulator.reports.count
            if count != last {
                last = count
                since = MonotonicClock.now()
            } else if MonotonicClock.now() - since > 0.2 {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
