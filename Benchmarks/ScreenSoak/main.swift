// Screen soak: everything the screen API does, for minutes, against a device or a simulator
// (start `nanokvm-sim` yourself; Benchmarks/screen-soak does it all), while sampling this
// process's resident memory. Run as a release build:
//
//   swift run -c release ScreenSoak --url http://127.0.0.1:8080 [--minutes 5] [--user admin --password admin]
//
// Workload, all at once on one client (so one shared MJPEG stream):
//   - an iterator consuming every frame and decoding it (pixels + diff against the previous);
//   - waitChange in a loop (1 s timeout) and waitStill (0.5 s) in turns;
//   - a screenshot every 2 s, saved as .jpg and every 5th as .png, plus a terminal preview;
//   - a 2-second .avi recording every 20 s;
//   - typing a character every 300 ms so the screen changes (paste; the simulator types it).
// Memory: RSS from /proc/self/statm every 5 s; the baseline is taken after a 30 s warm-up,
// growth = last sample − baseline (goal < 5 MB). Prints one line per sample and a summary.

import NanoKVM

#if canImport(Glibc)
import Glibc
#endif

func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return 0 }
    let fields = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

func megabytes(_ bytes: Int) -> String {
    let tenths = Int((Double(bytes) / 1_048_576 * 10).rounded())
    return "\(tenths < 0 ? "-" : "")\(abs(tenths) / 10).\(abs(tenths) % 10) MB"
}

func printError(_ message: String) {
    let bytes = Array("ScreenSoak: \(message)\n".utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    printError(message)
    exit(2)
}

var url: String?
var minutes = 5.0
var user = "admin"
var password = "admin"
var warmup = 30.0
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    guard !arguments.isEmpty else { fail("\(flag) needs a value") }
    let value = arguments.removeFirst()
    switch flag {
    case "--url": url = value
    case "--minutes":
        guard let number = Double(value), number > 0 else { fail("--minutes: not a positive number") }
        minutes = number
    case "--warmup":
        guard let number = Double(value), number >= 0 else { fail("--warmup: not a number") }
        warmup = number
    case "--user": user = value
    case "--password": password = value
    default: fail("unknown option \(flag)")
    }
}
guard let url else { fail("usage: ScreenSoak --url URL [--minutes M] [--warmup S] [--user U --password P]") }

struct Counters: Sendable {
    var frames = 0
    var changes = 0
    var stills = 0
    var screenshots = 0
    var recordings = 0
    var recordedFrames = 0
    var pastes = 0
    var errors: [String] = []
}

actor Tally {
    var c = Counters()
    func add(_ update: @Sendable (inout Counters) -> Void) { update(&c) }
    func snapshot() -> Counters { c }
}

let directory = "/tmp/kvmlua-screen-soak-\(getpid())"
mkdir(directory, 0o755)

let tally = Tally()
let total = minutes * 60
let warmupSeconds = warmup

let exitCode: Int32 = await {
    let client: NanoKVMClient
    do {
        client = try await NanoKVMClient.connect(ConnectionOptions(url: url, username: user, password: password))
    } catch {
        printError("cannot connect: \(error)")
        return 1
    }
    let frames = client.frames
    // Cost of the pixel operations on this machine (release), before the soak.
    do {
        let a = try await frames.screenshot()
        // The wait starts before the paste: the simulator draws the text while the paste request
        // runs, so a wait begun after it would see a screen that has stopped changing.
        async let changed = frames.waitChange(timeout: .seconds(5))
        try await client.hid.paste("timing")
        let b = try await changed
        func time(_ label: String, _ runs: Int, _ body: () throws -> Void) rethrows {
            let t0 = MonotonicClock.now()
            for _ in 0..<runs { try body() }
            print("\(label): \(Double(Int((MonotonicClock.now() - t0) / Double(runs) * 100_000)) / 100) ms")
        }
        let jpeg = a.receivedJPEG ?? []
        try time("decode \(a.width)x\(a.height) JPEG (\(jpeg.count) bytes)", 50) { _ = try JPEGCodec.decode(jpeg) }
        _ = try a.pixels()
        _ = try b.pixels()
        try time("diff (decoded frames)", 50) { _ = try b.diff(a) }
        try time("diff with decoding both", 20) { _ = try Frame(jpeg: jpeg).diff(Frame(jpeg: b.receivedJPEG ?? [])) }
        try time("PNG encode", 5) { _ = try a.png() }
        try time("terminal preview 120 columns", 20) { _ = try TerminalPreview.render(a, columns: 120) }
    } catch {
        printError("timing: \(error)")
    }
    let start = MonotonicClock.now()
    func running() -> Bool { MonotonicClock.now() - start < total }

    await withTaskGroup(of: Void.self) { group in
        // Every frame, decoded and compared.
        group.addTask {
            do {
                let subscription = try frames.subscribe(bufferedFrames: 2)
                var previous: Frame?
                while running(), let frame = try await subscription.next(timeout: .seconds(10)) {
                    _ = try frame.pixels()
                    if let previous { _ = try frame.diff(previous) }
                    previous = frame
                    await tally.add { $0.frames += 1 }
                }
                subscription.close()
            } catch {
                await tally.add { $0.errors.append("iterator: \(error)") }
            }
        }
        // Waits.
        group.addTask {
            var turn = 0
            while running() {
                turn += 1
                do {
                    if turn % 2 == 0 {
                        _ = try await frames.waitChange(timeout: .seconds(1))
                        await tally.add { $0.changes += 1 }
                    } else {
                        _ = try await frames.waitStill(seconds: 0.5, timeout: .seconds(1))
                        await tally.add { $0.stills += 1 }
                    }
                } catch let error as NanoKVMError where error.kind == .timeout {
                    continue
                } catch {
                    await tally.add { $0.errors.append("wait: \(error)") }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
        // Screenshots, files, preview.
        group.addTask {
            var n = 0
            while running() {
                n += 1
                do {
                    let frame = try await frames.screenshot()
                    try frame.save(to: "\(directory)/shot.jpg")
                    if n % 5 == 0 {
                        try frame.save(to: "\(directory)/shot.png")
                        _ = try frame.crop(ScreenArea(x: 0.25, y: 0.25, width: 0.5, height: 0.5)).jpeg()
                        _ = try TerminalPreview.render(frame, columns: 120)
                    }
                    await tally.add { $0.screenshots += 1 }
                } catch {
                    await tally.add { $0.errors.append("screenshot: \(error)") }
                }
                try? await Task.sleep(for: .seconds(2))
            }
        }
        // Recordings.
        group.addTask {
            while running() {
                do {
                    let result = try await frames.record(to: "\(directory)/rec.avi", seconds: 2)
                    await tally.add { $0.recordings += 1; $0.recordedFrames += result.frames }
                } catch {
                    await tally.add { $0.errors.append("record: \(error)") }
                }
                try? await Task.sleep(for: .seconds(18))
            }
        }
        // Typing, so the screen changes.
        group.addTask {
            let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789 ")
            var i = 0
            while running() {
                do {
                    try await client.hid.paste(String(letters[i % letters.count]) + (i % 100 == 99 ? "\n" : ""))
                    i += 1
                    await tally.add { $0.pastes += 1 }
                } catch {
                    await tally.add { $0.errors.append("paste: \(error)") }
                }
                try? await Task.sleep(for: .milliseconds(300))
            }
        }
        // Memory samples.
        group.addTask {
            var baseline: Int?
            var peak = 0
            var last = 0
            while running() {
                try? await Task.sleep(for: .seconds(5))
                let elapsed = MonotonicClock.now() - start
                last = residentBytes()
                peak = max(peak, last)
                if baseline == nil && elapsed >= warmupSeconds { baseline = last }
                let c = await tally.snapshot()
                print(
                    "t=\(Int(elapsed))s rss=\(megabytes(last)) frames=\(c.frames) changes=\(c.changes) stills=\(c.stills) "
                        + "screenshots=\(c.screenshots) recordings=\(c.recordings) errors=\(c.errors.count)")
            }
            let c = await tally.snapshot()
            let base = baseline ?? last
            print("summary: \(Int(total))s, frames \(c.frames) (\(Int(Double(c.frames) / total)) fps decoded), recordings \(c.recordings) (\(c.recordedFrames) frames), screenshots \(c.screenshots), pastes \(c.pastes)")
            print("memory: baseline \(megabytes(base)) after \(Int(warmupSeconds))s, final \(megabytes(last)), peak \(megabytes(peak)), growth \(megabytes(last - base))")
            for error in c.errors.prefix(10) { print("error: \(error)") }
        }
    }
    await client.close()
    let c = await tally.snapshot()
    return c.errors.isEmpty ? 0 : 1
}()

_ = unlink("\(directory)/shot.jpg")
_ = unlink("\(directory)/shot.png")
_ = unlink("\(directory)/rec.avi")
_ = rmdir(directory)
exit(exitCode)
