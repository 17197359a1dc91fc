import NanoKVM
import NanoKVMSimulator
import Testing

func isJPEG(_ bytes: [UInt8]) -> Bool {
    bytes.count > 4 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[bytes.count - 2] == 0xFF && bytes[bytes.count - 1] == 0xD9
}

@Suite("MJPEG stream over HTTP", .timeLimit(.minutes(1)))
struct StreamTests {
    @Test("Frames arrive in order with receive times; stopping closes the connection", arguments: bothGenerations)
    func frames(generation: SimulatorGeneration) async throws {
        try await withDevice(generation, configure: { $0.fps = 30 }) { simulator, client in
            var received: [MJPEGFrame] = []
            for try await frame in client.stream.mjpeg(MJPEGStreamOptions(stallTimeout: .seconds(5))) {
                received.append(frame)
                if received.count == 5 { break }
            }
            #expect(received.count == 5)
            #expect(received.allSatisfy { isJPEG($0.jpeg) })
            #expect(received.map(\.index) == [1, 2, 3, 4, 5])
            #expect(zip(received, received.dropFirst()).allSatisfy { $0.receivedAt <= $1.receivedAt })
            #expect(received.allSatisfy { $0.skippedParts == 0 })
            // The consumer stopped: the device sees its viewer leave.
            var viewers = -1
            for _ in 0..<50 {
                viewers = await simulator.state().mjpegViewers
                if viewers == 0 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(viewers == 0)
        }
    }

    @Test("Cancelling the consuming task ends the stream with cancelled, not a hang")
    func cancelConsumer() async throws {
        try await withDevice(.current) { simulator, client in
            let task = Task { () -> Int in
                var count = 0
                for try await _ in client.stream.mjpeg() { count += 1 }
                return count
            }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            _ = try? await task.value
            var viewers = -1
            for _ in 0..<50 {
                viewers = await simulator.state().mjpegViewers
                if viewers == 0 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(viewers == 0)
        }
    }

    @Test("A part truncated by the device is never handed out", arguments: bothGenerations)
    func truncatedBySimulator(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            var good = 0
            do {
                for try await frame in client.stream.mjpeg(MJPEGStreamOptions(stallTimeout: .seconds(5))) {
                    #expect(isJPEG(frame.jpeg))
                    good += 1
                    if good == 2 { simulator.inject(.truncateNextMJPEGPart) }
                    if good > 40 { break }
                }
            } catch let error as NanoKVMError {
                #expect(error.kind == .transport || error.kind == .protocol)
            }
            #expect(good >= 2 && good <= 40)
        }
    }

    @Test("Truncated and garbled parts from the device are skipped; the stream goes on", arguments: bothGenerations)
    func skippedBySimulator(generation: SimulatorGeneration) async throws {
        try await withDevice(generation, configure: { $0.fps = 30 }) { simulator, client in
            var frames: [MJPEGFrame] = []
            for try await frame in client.stream.mjpeg(MJPEGStreamOptions(stallTimeout: .seconds(5), bufferedFrames: 64)) {
                frames.append(frame)
                if frames.count == 2 { simulator.inject(.truncateMJPEGPartAndContinue) }
                if frames.count == 5 { simulator.inject(.garbleNextMJPEGPart) }
                if frames.count == 9 { break }
            }
            #expect(frames.count == 9)
            #expect(frames.allSatisfy { isJPEG($0.jpeg) })
            #expect(frames.last?.skippedParts == 2)
            #expect(frames.map(\.index) == Array(1...9))
        }
    }

    @Test("Truncated and garbled parts are skipped and the stream resynchronises (scripted device)")
    func resynchronises() async throws {
        var maker = SyntheticJPEG(seed: 42)
        let jpegs = (0..<4).map { maker.make(entropyBytes: 20_000 + $0 * 1000, thumbnail: $0 == 1) }
        var body = part(jpegs[0], contentLength: true)
        // Truncated: declares the whole length, sends a third, then the next part starts.
        body += Array("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: \(jpegs[1].count)\r\n\r\n".utf8) + Array(jpegs[1].prefix(jpegs[1].count / 3))
        body += part(jpegs[1], contentLength: false)
        body += Array("--frame\r\nContent-Type: image/jpeg\r\n\r\n<html>garbage</html>\r\n".utf8)
        body += part(jpegs[2], contentLength: true) + part(jpegs[3], contentLength: false)
        let streamBody = body
        let device = try await ScriptedDevice.start { request in
            switch request.path {
            case "/api/vm/info": return ScriptedDevice.info
            case "/api/stream/mjpeg": return ScriptedDevice.stream(streamBody)
            default: return ScriptedDevice.answer(status: "404 Not Found", contentType: "text/plain", body: Array("404 page not found".utf8))
            }
        }
        let client = try await NanoKVMClient.connect(ConnectionOptions(url: "http://127.0.0.1:\(device.port)"))
        var frames: [MJPEGFrame] = []
        for try await frame in client.stream.mjpeg(MJPEGStreamOptions(stallTimeout: .seconds(5), bufferedFrames: 16)) {
            frames.append(frame)
        }
        #expect(frames.map(\.jpeg) == [jpegs[0], jpegs[1], jpegs[2], jpegs[3]])
        #expect(frames.last?.skippedParts == 2)
        await client.close()
        await device.stop()
    }

    @Test("A stalled stream raises timeout", arguments: bothGenerations)
    func stall(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            // The device sends nothing, not even headers, while it has no frame (§9.1).
            simulator.inject(.delay(seconds: 4, path: "/api/stream/mjpeg"))
            let clock = ContinuousClock()
            let start = clock.now
            let error = await expectError(.timeout) {
                for try await _ in client.stream.mjpeg(MJPEGStreamOptions(stallTimeout: .milliseconds(700))) {}
            }
            #expect(error?.path == "/api/stream/mjpeg" && error?.device == simulator.baseURL)
            #expect(clock.now - start < .seconds(3))
        }
    }

    @Test("MJPEG after an expired token logs in again once", arguments: bothGenerations)
    func reloginForStream(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            simulator.expireTokens()
            var count = 0
            for try await frame in client.stream.mjpeg(MJPEGStreamOptions(stallTimeout: .seconds(5))) {
                #expect(isJPEG(frame.jpeg))
                count += 1
                if count == 2 { break }
            }
            #expect(count == 2)
            #expect(await client.loginCount() == 2)
        }
    }
}
