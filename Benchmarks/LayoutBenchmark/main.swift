// XKB keyboard layouts (issue 15), release build:
//
//   scripts/build-release --product LayoutBenchmark && .build/release/LayoutBenchmark [characters] [runs]
//
// Reported:
// - the time to build a layout's table (compile the keymap with libxkbcommon, walk its keys and
//   levels, probe the compose data for dead keys), median and max of 5 builds without the
//   cache, for each acceptance layout; the first resolve in a process builds it, later ones
//   read the cache (also shown);
// - typing 1,000 characters at delay 0 on `ch(fr)` next to `us`, in the same run, alternating,
//   each against a simulated host with that layout: seconds per character and per key stroke
//   (a dead-key character is two strokes), and the ratio ch(fr)/us. Every run checks that the
//   host's transcript is exactly the text.

import NanoKVM
import NanoKVMSimulator

#if canImport(Glibc)
import Glibc
#endif

let acceptanceLayouts = [
    "us", "gb", "de", "fr", "ch(fr)", "ch(de)", "it", "es", "pt", "br", "se", "no", "dk", "fi", "pl", "cz", "hu",
    "be", "nl", "us(intl)", "fr(bepo)", "de(neo)",
]

func line(_ text: String) {
    print(text)
    fflush(nil)
}

func ms(_ duration: Duration) -> String {
    let value = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    return String(format: "%.2f", value)
}

func median(_ values: [Duration]) -> Duration { values.sorted()[values.count / 2] }

/// `count` characters drawn from everything `layout` types (letters weighted like text).
func sample(_ layout: KeyboardLayout, count: Int) -> String {
    let all = Set(layout.strokes.keys).union(layout.sequences.keys).filter { ("a" + String($0)).count == 2 }
    let pool = all.sorted()
    let letters = pool.filter { $0.isLetter && $0.isASCII }
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    var text = ""
    while text.count < count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let letter = state % 2 == 0 && !letters.isEmpty
        let source = letter ? letters : pool
        text.append(source[Int((state >> 8) % UInt64(source.count))])
    }
    return text
}

@main
struct LayoutBenchmark {
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst()
        let count = arguments.first.flatMap { Int($0) } ?? 1000
        let runs = arguments.dropFirst().first.flatMap { Int($0) } ?? 5
        do {
            try buildTimes()
            try await typing(count: count, runs: runs)
        } catch {
            line("LayoutBenchmark failed: \(error)")
            exit(1)
        }
    }

    static func buildTimes() throws {
        let clock = ContinuousClock()
        line("table build per layout (ms, 5 builds without the cache): median max | strokes sequences | cached resolve")
        var worst = Duration.zero
        for name in acceptanceLayouts {
            guard let parsed = XKBLayoutName(parsing: name) else { continue }
            var times: [Duration] = []
            var layout: KeyboardLayout?
            for _ in 0..<5 {
                let start = clock.now
                layout = try XKBEngine.build(parsed)
                times.append(clock.now - start)
            }
            _ = try KeyboardLayout.resolve(name)
            let cachedStart = clock.now
            _ = try KeyboardLayout.resolve(name)
            let cached = clock.now - cachedStart
            let slowest = times.max() ?? .zero
            worst = max(worst, slowest)
            line("  \(name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(ms(median(times))) \(ms(slowest)) | \(layout?.strokes.count ?? 0) \(layout?.sequences.count ?? 0) | \(ms(cached))")
        }
        line("  slowest build: \(ms(worst)) ms (target <= 20 ms)")
    }

    static func typing(count: Int, runs: Int) async throws {
        var configuration = SimulatorConfiguration(generation: .current, loginDelayScale: 0, timeScale: 0, inspection: true)
        configuration.fps = 10
        let simulator = NanoKVMSimulator(configuration: configuration)
        try await simulator.start()
        defer { Task { await simulator.stop() } }
        let options = try ConnectionOptions(url: simulator.baseURL, username: configuration.username, password: configuration.password)
        let client = try await NanoKVMClient.connect(options)
        let hid = client.makeHIDController()
        let layouts = [try KeyboardLayout.resolve("us"), try KeyboardLayout.resolve("ch(fr)")]
        let texts = layouts.map { sample($0, count: count) }
        let strokes = zip(layouts, texts).map { layout, text in text.reduce(0) { $0 + (layout.keystrokes(for: $1)?.count ?? 0) } }
        var times: [[Duration]] = [[], []]
        // One warm-up of each, then alternate so that both see the same machine load.
        for round in 0...runs {
            for index in layouts.indices {
                simulator.setHostLayout(layouts[index])
                let before = simulator.transcript
                let start = ContinuousClock.now
                _ = try await hid.type(texts[index], options: TypingOptions(layout: layouts[index], delay: 0))
                // Until the host has decoded every report (the last release included).
                let target = before.count + texts[index].count
                while simulator.transcript.count < target { try await Task.sleep(for: .microseconds(200)) }
                let elapsed = ContinuousClock.now - start
                let got = String(simulator.transcript.dropFirst(before.count))
                guard got == texts[index] else {
                    line("  \(layouts[index].name): the host's text differs from what was typed")
                    exit(1)
                }
                if round > 0 { times[index].append(elapsed) }
            }
        }
        await hid.close()
        await client.close()
        line("typing \(count) characters at delay 0 (median of \(runs), host decodes through libxkbcommon):")
        var perStroke: [Double] = []
        var perCharacter: [Double] = []
        for index in layouts.indices {
            let seconds = Double(median(times[index]).components.attoseconds) / 1e18 + Double(median(times[index]).components.seconds)
            perStroke.append(seconds / Double(strokes[index]))
            perCharacter.append(seconds / Double(count))
            line("  \(layouts[index].name.padding(toLength: 7, withPad: " ", startingAt: 0)) \(String(format: "%.1f", seconds * 1000)) ms, \(strokes[index]) strokes, \(String(format: "%.1f", perCharacter[index] * 1e6)) µs/char, \(String(format: "%.1f", perStroke[index] * 1e6)) µs/stroke")
        }
        line("  ratio ch(fr)/us: \(String(format: "%.3f", perStroke[1] / perStroke[0])) per stroke, \(String(format: "%.3f", perCharacter[1] / perCharacter[0])) per character (target: per stroke within 1.10)")
    }
}
