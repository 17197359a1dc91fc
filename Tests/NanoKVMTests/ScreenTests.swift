// Screen (issue 6) against the simulator over loopback: screenshots, the shared stream, waits,
// recordings checked with ffprobe, injected MJPEG faults, frame detection, and the calibration
// of the per-pixel noise tolerance.

import Foundation
import NanoKVM
import NanoKVMSimulator
import Testing

/// Runs a program from PATH; nil when it is not installed.
func runTool(_ name: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String)? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        .map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let path else { return nil }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A fresh directory for a test's files, removed by the caller.
func scratchDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "kvmlua-screen-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("Screen: frames, waits, recordings (simulator)", .serialized, .timeLimit(.minutes(1)))
struct ScreenTests {
    @Test("A screenshot has the simulator's resolution, saves as .jpg/.png, and ffmpeg decodes both", arguments: bothGenerations)
    func screenshot(generation: SimulatorGeneration) async throws {
        try await withDevice(generation, configure: { $0.width = 1024; $0.height = 768 }) { simulator, client in
            let frame = try await client.frames.screenshot()
            #expect(frame.width == 1024 && frame.height == 768)
            #expect(frame.size > 1000)
            #expect(frame.receivedJPEG.map(isJPEG) == true)
            #expect(!frame.isDecoded)  // the size came from the header alone
            let dir = try scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try frame.save(to: dir + "/s.jpg")
            try frame.save(to: dir + "/s.PNG")
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/s.jpg")) == Data(frame.receivedJPEG ?? []))
            if let probe = try runTool("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", dir + "/s.jpg"]) {
                #expect(probe.status == 0, "\(probe.stderr)")
                #expect(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "mjpeg,1024,768")
            }
            // The PNG decodes (ffmpeg) to exactly our decoded pixels.
            if let decoded = try runTool(
                "ffmpeg", ["-v", "error", "-i", dir + "/s.PNG", "-f", "rawvideo", "-pix_fmt", "rgb24", dir + "/s.rgb"])
            {
                #expect(decoded.status == 0, "\(decoded.stderr)")
                let raw = try Data(contentsOf: URL(fileURLWithPath: dir + "/s.rgb"))
                #expect(Array(raw) == (try frame.pixels().pixels))
            }
        }
    }

    @Test("Back-to-back screenshots reuse one stream; it closes after the linger")
    func linger() async throws {
        try await withDevice(.current) { simulator, client in
            client.frames.setLinger(.milliseconds(600))
            let a = try await client.frames.screenshot()
            let b = try await client.frames.screenshot()
            let c = try await client.frames.screenshot()
            #expect(a.sequence < b.sequence && b.sequence < c.sequence)
            #expect(client.frames.connectionsOpened == 1)
            #expect(simulator.requestLog.filter { $0.path.hasPrefix("/api/stream/mjpeg") }.count == 1)
            #expect(await eventually(5) { await simulator.state().mjpegViewers == 0 })
            #expect(!client.frames.isStreaming)
            _ = try await client.frames.screenshot()
            #expect(client.frames.connectionsOpened == 2)
        }
    }

    @Test("Typing inside waitChange returns a frame that differs; a still screen times out")
    func waitChange() async throws {
        try await withDevice(.current) { simulator, client in
            let before = try await client.frames.screenshot()
            // Nothing happens: timeout, after about the time asked for.
            let start = Date()
            let error = await expectError(.timeout) { try await client.frames.waitChange(timeout: .milliseconds(800)) }
            #expect(error?.message.contains("did not change") == true)
            #expect(Date().timeIntervalSince(start) >= 0.75)
            // Typing while waiting.
            let typing = Task {
                try await Task.sleep(for: .milliseconds(300))
                try await client.hid.paste("x")
            }
            let changed = try await client.frames.waitChange(timeout: .seconds(5))
            try await typing.value
            let difference = try changed.diff(before)
            #expect(difference > Frame.defaultChangeThreshold)
            #expect(changed.time > before.time)
            #expect(simulator.consoleText.contains("x"))
        }
    }

    @Test("waitChange only looks inside its area")
    func waitChangeArea() async throws {
        try await withDevice(.current) { simulator, client in
            _ = try await client.frames.screenshot()
            // The console types at the top left; the bottom half stays the same.
            let bottom = try ScreenArea(x: 0, y: 0.5, width: 1, height: 0.5)
            let typing = Task {
                try await Task.sleep(for: .milliseconds(200))
                try await client.hid.paste("hello")
            }
            await expectError(.timeout) { try await client.frames.waitChange(area: bottom, timeout: .seconds(1.5)) }
            try await typing.value
            // A threshold of 0.5 is never reached by a few characters.
            let typing2 = Task {
                try await Task.sleep(for: .milliseconds(200))
                try await client.hid.paste("world")
            }
            // Every frame now differs from the reference but not enough; comparing may be
            // slower than the stream (debug build): the timeout still holds.
            let start = Date()
            await expectError(.timeout) { try await client.frames.waitChange(threshold: 0.5, timeout: .seconds(1.5)) }
            #expect(Date().timeIntervalSince(start) < 2.5)
            try await typing2.value
        }
    }

    @Test("waitStill returns once the typing has stopped for the still time")
    func waitStill() async throws {
        try await withDevice(.current) { simulator, client in
            _ = try await client.frames.screenshot()
            let typingTime = 1.5
            let start = Date()
            let typing = Task {
                while Date().timeIntervalSince(start) < typingTime {
                    try await client.hid.paste("a")
                    try await Task.sleep(for: .milliseconds(100))
                }
                return Date().timeIntervalSince(start)
            }
            let frame = try await client.frames.waitStill(seconds: 0.7, timeout: .seconds(10))
            let elapsed = Date().timeIntervalSince(start)
            let typedUntil = try await typing.value
            #expect(elapsed >= typedUntil + 0.6, "returned \(elapsed) s after the start, typing ended at \(typedUntil) s")
            #expect(elapsed < typedUntil + 3)
            // The returned frame shows the final screen.
            let after = try await client.frames.screenshot()
            #expect(try frame.map { try after.diff($0) } == 0)
            // A screen that keeps changing: timeout.
            let busy = Task {
                for _ in 0..<40 {
                    try await client.hid.paste("b")
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            await expectError(.timeout) { try await client.frames.waitStill(seconds: 1, timeout: .seconds(1.5)) }
            busy.cancel()
            _ = try? await busy.value
        }
    }

    @Test("A cancelled wait raises cancelled promptly")
    func cancelledWait() async throws {
        try await withDevice(.current) { _, client in
            let task = Task { try await client.frames.waitChange(timeout: .seconds(30)) }
            try await Task.sleep(for: .milliseconds(300))
            let start = Date()
            task.cancel()
            do {
                _ = try await task.value
                Issue.record("waitChange returned after cancel")
            } catch let error as NanoKVMError {
                #expect(error.kind == .cancelled)
            }
            #expect(Date().timeIntervalSince(start) < 1)
        }
    }

    @Test("A 3-second recording at 30 fps: ffprobe counts about 90 frames", arguments: ["avi", "mp4"])
    func record(container: String) async throws {
        try await withDevice(.current, configure: { $0.fps = 30 }) { _, client in
            let dir = try scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = dir + "/rec." + container
            if container == "mp4", try runTool("ffmpeg", ["-version"]) == nil {
                await expectError(.unsupported) { try await client.frames.record(to: path, seconds: 3) }
                return
            }
            let typing = Task {
                for _ in 0..<10 {
                    try await client.hid.paste("r")
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            let result = try await client.frames.record(to: path, seconds: 3)
            _ = try? await typing.value
            #expect(result.path == path)
            #expect(result.seconds == 3)
            #expect(abs(result.frames - 90) <= 9, "recorded \(result.frames) frames")
            guard
                let probe = try runTool(
                    "ffprobe",
                    ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                     "stream=codec_name,width,height,nb_read_frames,avg_frame_rate:format=duration", "-of", "default=nw=1", path])
            else { return }
            #expect(probe.status == 0, "\(probe.stderr)")
            #expect(probe.stderr.isEmpty, "\(probe.stderr)")
            var fields: [String: String] = [:]
            for line in probe.stdout.split(separator: "\n") {
                let pair = line.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
            }
            let counted = Int(fields["nb_read_frames"] ?? "") ?? -1
            #expect(abs(counted - 90) <= 9, "ffprobe counted \(counted) frames: \(probe.stdout)")
            #expect(counted == result.frames)
            #expect(fields["codec_name"] == (container == "avi" ? "mjpeg" : "h264"))
            #expect(fields["width"] == "1280" && fields["height"] == "720")
            let duration = Double(fields["duration"] ?? "") ?? -1
            #expect(abs(duration - 3) < 0.2, "duration \(duration)")
            // The whole file decodes without errors.
            if let decode = try runTool("ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"]) {
                #expect(decode.status == 0 && decode.stderr.isEmpty, "\(decode.stderr)")
            }
        }
    }

    @Test("Recording by frame count; bad arguments are usage errors")
    func recordFrames() async throws {
        try await withDevice(.current) { _, client in
            let dir = try scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let result = try await client.frames.record(to: dir + "/f.AVI", frames: 12)
            #expect(result.frames == 12)
            #expect(result.seconds > 0.2 && result.seconds < 2)
            if let probe = try runTool(
                "ffprobe", ["-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", dir + "/f.AVI"])
            {
                #expect(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "12")
            }
            await expectError(.usage) { try await client.frames.record(to: dir + "/x.mov", seconds: 1) }
            await expectError(.usage) { try await client.frames.record(to: dir + "/x.avi") }
            await expectError(.usage) { try await client.frames.record(to: dir + "/x.avi", seconds: -1) }
            await expectError(.usage) { try await client.frames.record(to: dir + "/x.avi", frames: 0) }
            await expectError(.usage) { try await client.frames.record(to: dir + "/no/such/dir/x.avi", seconds: 1) }
        }
    }

    @Test("A recording and a wait at the same time share one HTTP stream")
    func sharedStream() async throws {
        try await withDevice(.current) { simulator, client in
            let dir = try scratchDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            client.frames.setLinger(.milliseconds(300))
            let recording = Task { try await client.frames.record(to: dir + "/both.avi", seconds: 2) }
            let waiting = Task { try await client.frames.waitChange(timeout: .seconds(5)) }
            let iterating = Task { () -> Int in
                var n = 0
                for try await _ in try client.frames.subscribe(fps: 5, count: 6) { n += 1 }
                return n
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(client.frames.consumerCount == 3)
            #expect(await simulator.state().mjpegViewers == 1)
            try await client.hid.paste("z")
            let changed = try await waiting.value
            #expect(changed.width == 1280)
            let result = try await recording.value
            #expect(result.frames > 30)
            #expect(try await iterating.value == 6)
            #expect(client.frames.connectionsOpened == 1)
            #expect(await simulator.state().mjpegViewers <= 1)
            #expect(await eventually(5) { await simulator.state().mjpegViewers == 0 })
        }
    }

    @Test("fps limits the rate of an iterator; count ends it")
    func rateLimit() async throws {
        try await withDevice(.current, configure: { $0.fps = 30 }) { _, client in
            let subscription = try client.frames.subscribe(fps: 5, count: 6)
            var times: [Double] = []
            while let frame = try await subscription.next(timeout: .seconds(5)) { times.append(frame.time) }
            #expect(times.count == 6)
            let span = (times.last ?? 0) - (times.first ?? 0)
            #expect(span > 0.9 && span < 1.6, "6 frames at 5 fps took \(span) s")
            #expect(try await subscription.next() == nil)
            await expectError(.usage) { try client.frames.subscribe(fps: 0) }
            await expectError(.usage) { try client.frames.subscribe(count: -1) }
        }
    }

    @Test("Truncated and garbled MJPEG parts are skipped and the frames go on", arguments: bothGenerations)
    func faults(generation: SimulatorGeneration) async throws {
        try await withDevice(generation, configure: { $0.fps = 30 }) { simulator, client in
            let subscription = try client.frames.subscribe(bufferedFrames: 64)
            var frames: [Frame] = []
            while frames.count < 20, let frame = try await subscription.next(timeout: .seconds(5)) {
                frames.append(frame)
                if frames.count == 3 { simulator.inject(.truncateMJPEGPartAndContinue) }
                if frames.count == 8 { simulator.inject(.garbleNextMJPEGPart) }
                if frames.count == 12 { simulator.inject(.truncateMJPEGPartAndContinue) }
            }
            subscription.close()
            #expect(frames.count == 20)
            for frame in frames {
                #expect(frame.width == 1280 && frame.height == 720)
                _ = try frame.pixels()  // every frame decodes
            }
            #expect(client.frames.connectionsOpened == 1)
            // Sequence numbers are consecutive frames of the stream (skipped parts never count).
            #expect(zip(frames, frames.dropFirst()).allSatisfy { $0.sequence + 1 == $1.sequence })
        }
    }

    @Test("A stream the device cuts off is reopened for the consumers")
    func reconnect() async throws {
        try await withDevice(.current, configure: { $0.fps = 30 }) { simulator, client in
            let subscription = try client.frames.subscribe(bufferedFrames: 64)
            var count = 0
            while count < 15, try await subscription.next(timeout: .seconds(5)) != nil {
                count += 1
                if count == 3 { simulator.inject(.truncateNextMJPEGPart) }
            }
            #expect(count == 15)
            #expect(client.frames.connectionsOpened == 2)
        }
    }

    @Test("Frame detection on, static screen: a screenshot still gets a frame; waits see no change")
    func frameDetection() async throws {
        // timeScale 0 would make detect/stop switch detection off and on in the same instant.
        try await withDevice(.current, configure: { $0.timeScale = 0.1 }) { simulator, client in
            try await client.stream.setFrameDetection(true)
            #expect(await simulator.state().frameDetect)
            let frame = try await client.frames.screenshot(timeout: .seconds(5))
            #expect(frame.width == 1280)
            // The device sends nothing while nothing changes: no change, a timeout.
            await expectError(.timeout) { try await client.frames.waitChange(timeout: .seconds(1)) }
            // A still screen without frames is still.
            let still = try await client.frames.waitStill(seconds: 0.5, timeout: .seconds(3))
            #expect(still != nil)
            // Typing sends a frame, and waitChange sees it.
            let typing = Task {
                try await Task.sleep(for: .milliseconds(300))
                try await client.hid.paste("d")
            }
            let changed = try await client.frames.waitChange(timeout: .seconds(5))
            try await typing.value
            #expect(try changed.diff(frame) > Frame.defaultChangeThreshold)
        }
    }

    @Test("A resolution change mid-stream is a change; frames carry their new size")
    func resolutionChange() async throws {
        try await withDevice(.current) { _, client in
            let before = try await client.frames.screenshot()
            #expect(before.width == 1280)
            let switching = Task {
                try await Task.sleep(for: .milliseconds(300))
                try await client.screen.setResolution(480)
            }
            let changed = try await client.frames.waitChange(timeout: .seconds(5))
            try await switching.value
            #expect(changed.width == 640 && changed.height == 480)
            #expect(try changed.diff(before) == 1)
            let after = try await client.frames.screenshot()
            #expect(after.width == 640)
            _ = try after.pixels()
        }
    }

    @Test("No frames at all (host off) raise timeout, not a hang")
    func hostOff() async throws {
        try await withDevice(.current, configure: { $0.hostPoweredOn = false }) { _, client in
            let start = Date()
            let error = await expectError(.timeout) { try await client.frames.screenshot(timeout: .seconds(1.5)) }
            #expect(error?.message.contains("HDMI") == true)
            #expect(Date().timeIntervalSince(start) < 3)
            // One iterator, two tasks waiting on it: the second is refused, the first times out.
            let subscription = try client.frames.subscribe()
            let waiting = Task { try await subscription.next(timeout: .seconds(1.5)) }
            try await Task.sleep(for: .milliseconds(300))
            await expectError(.usage) { try await subscription.next(timeout: .seconds(1)) }
            await expectError(.timeout) { try await waiting.value }
            subscription.close()
            #expect(try await subscription.next() == nil)
        }
    }

    @Test("A closed client raises usage from every screen call")
    func closed() async throws {
        try await withDevice(.current) { _, client in
            _ = try await client.frames.screenshot()
            await client.close()
            await expectError(.usage) { try await client.frames.screenshot(timeout: .seconds(2)) }
            await expectError(.usage) { try await client.frames.waitChange(timeout: .seconds(2)) }
        }
    }

    @Test("Frame API on a real frame: pixel, crop, diff, preview")
    func frameAPI() async throws {
        try await withDevice(.current) { _, client in
            let frame = try await client.frames.screenshot()
            let (r, g, b) = try frame.pixel(x: 1279, y: 719)
            #expect(abs(Int(r) - 0x10) < 12 && abs(Int(g) - 0x10) < 12 && abs(Int(b) - 0x18) < 12)  // console background
            await expectError(.usage) { try frame.pixel(x: 1280, y: 0) }
            await expectError(.usage) { try frame.pixel(x: 0, y: -1) }
            let crop = try frame.crop(ScreenArea(x: 0.5, y: 0.5, width: 0.25, height: 0.5))
            #expect(crop.width == 320 && crop.height == 360)
            #expect(try crop.pixel(x: 0, y: 0) == frame.pixel(x: 640, y: 360))
            #expect(crop.receivedJPEG == nil)
            let cropJPEG = try crop.jpeg()
            #expect(JPEGCodec.dimensions(cropJPEG)?.width == 320)
            #expect(try frame.diff(frame) == 0)
            let preview = try TerminalPreview.render(frame, columns: 80)
            let lines = preview.split(separator: "\n")
            #expect(lines.count == 23)  // 80 × 720/1280 / 2 = 22.5
            #expect(lines.allSatisfy { $0.filter { $0 == "▀" }.count == 80 })
        }
    }

    /// The per-pixel tolerance (Frame.noiseTolerance) against the simulator's frames: the
    /// same screen re-encoded at the device's qualities must not count as a change; one typed
    /// character must exceed the default threshold at 1280×720.
    @Test("Tolerance calibration at JPEG quality 50–100")
    func calibration() async throws {
        try await withDevice(.current) { simulator, client in
            var report: [String] = []
            for quality in [50, 60, 80, 100] {
                try await client.screen.setQuality(quality)
                try await Task.sleep(for: .milliseconds(150))
                let base = try await client.frames.screenshot()
                let pixels = try base.pixels()
                // Identical content, encoded again (4:2:0 as the device, and 4:4:4) at several qualities.
                var worstNoise = 0.0
                for requality in [quality, 50, 75, 100] {
                    for chroma420 in [true, false] {
                        let again = try Frame(jpeg: JPEGCodec.encode(pixels, quality: requality, chroma420: chroma420))
                        let noise = try again.diff(base)
                        worstNoise = max(worstNoise, noise)
                        if requality == quality { #expect(noise == 0, "q\(quality) re-encoded at q\(requality) 420=\(chroma420): \(noise)") }
                    }
                }
                // One typed character (several shapes, narrow and wide).
                var smallest = 1.0
                for character in ["x", "i", "m", ".", "-"] {
                    let before = try await client.frames.screenshot()
                    try await client.hid.paste(character)
                    let after = try await client.frames.waitChange(timeout: .seconds(3))
                    let change = try after.diff(before)
                    smallest = min(smallest, change)
                    #expect(change > Frame.defaultChangeThreshold, "q\(quality) '\(character)': \(change)")
                }
                report.append("q\(quality): worst re-encode noise \(worstNoise), smallest typed change \(smallest)")
            }
            print("tolerance \(Frame.noiseTolerance):\n" + report.joined(separator: "\n"))
        }
    }
}
