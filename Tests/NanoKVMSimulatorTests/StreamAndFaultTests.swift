// MJPEG framing per generation (§9.1, §12.26–27), fault injection, inspection, and the
// password obfuscation and Go-compatibility helpers.

import Foundation
import NanoKVM
import Testing
@testable import NanoKVMSimulator

/// Reads one multipart part from a chunked MJPEG body (parts may span chunks).
private func readPart(_ conn: TestConnection, pending: inout [UInt8]) async throws -> (headers: [String], jpeg: [UInt8]) {
    func find(_ needle: [UInt8], in bytes: [UInt8], from: Int = 0) -> Int? {
        guard bytes.count >= needle.count + from else { return nil }
        for i in from...(bytes.count - needle.count) where Array(bytes[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
    let separator = Array("\r\n\r\n".utf8)
    while find(separator, in: pending) == nil {
        guard let chunk = try await conn.readChunk() else { throw TestFailure("stream ended") }
        pending += chunk
    }
    let headerEnd = try #require(find(separator, in: pending))
    let headers = String(decoding: pending[0..<headerEnd], as: UTF8.self).components(separatedBy: "\r\n")
    pending.removeFirst(headerEnd + 4)
    if let lengthLine = headers.first(where: { $0.hasPrefix("Content-Length: ") }), let length = Int(lengthLine.dropFirst(16)) {
        while pending.count < length + 2 {
            guard let chunk = try await conn.readChunk() else { throw TestFailure("stream ended in a part") }
            pending += chunk
        }
        let jpeg = Array(pending[0..<length])
        pending.removeFirst(length + 2)
        return (headers, jpeg)
    }
    // No Content-Length (≤2.2.9): the JPEG ends before the next boundary.
    let boundary = Array("\r\n--frame\r\n".utf8)
    while find(boundary, in: pending) == nil {
        guard let chunk = try await conn.readChunk() else { throw TestFailure("stream ended") }
        pending += chunk
    }
    let end = try #require(find(boundary, in: pending))
    let jpeg = Array(pending[0..<end])
    pending.removeFirst(end + 2)
    return (headers, jpeg)
}

@Suite(.timeLimit(.minutes(1))) struct StreamTests {
    @Test func currentMJPEGFraming() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                try await conn.send("GET /api/stream/mjpeg?v=1 HTTP/1.1\r\nHost: x\r\nCookie: nano-kvm-token=\(token)\r\n\r\n")
                let (status, headers) = try await conn.readHead()
                #expect(status == 200)
                let names = headers.map(\.0)
                #expect(names == ["Cache-Control", "Connection", "Content-Type", "Date", "Pragma", "Transfer-Encoding", "X-Server-Date"])
                #expect(headers.first { $0.0 == "Content-Type" }?.1 == "multipart/x-mixed-replace; boundary=frame")
                #expect(headers.first { $0.0 == "X-Server-Date" }?.1.hasSuffix(" UTC") == true)
                var pending: [UInt8] = []
                // The first bytes of the body are the boundary: no preamble.
                pending = try #require(try await conn.readChunk())
                #expect(pending.starts(with: Array("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ".utf8)))
                let part = try await readPart(conn, pending: &pending)
                #expect(part.headers.count == 3)
                #expect(part.jpeg.starts(with: [0xFF, 0xD8]))
                #expect(part.jpeg.suffix(2) == [0xFF, 0xD9])
                let next = try await readPart(conn, pending: &pending)
                #expect(next.jpeg.starts(with: [0xFF, 0xD8]))
            }
        }
    }

    @Test func legacyPartsHaveNoContentLength() async throws {
        try await withSimulator(.fast(.legacy)) { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                try await conn.send("GET /api/stream/mjpeg HTTP/1.1\r\nHost: x\r\nCookie: nano-kvm-token=\(token)\r\n\r\n")
                let (status, headers) = try await conn.readHead()
                #expect(status == 200)
                #expect(!headers.contains { $0.0 == "X-Server-Date" })
                var pending: [UInt8] = []
                let part = try await readPart(conn, pending: &pending)
                #expect(part.headers == ["--frame", "Content-Type: image/jpeg"])
                #expect(part.jpeg.starts(with: [0xFF, 0xD8]))
            }
        }
    }

    @Test func noFramesWithoutSignalAndFrameDetection() async throws {
        var config = SimulatorConfiguration.fast()
        config.hostPoweredOn = false
        try await withSimulator(config) { sim in
            let token = try await sim.login()
            try await withConnection(sim.port, timeout: 1.0) { conn in
                try await conn.send("GET /api/stream/mjpeg HTTP/1.1\r\nHost: x\r\nCookie: nano-kvm-token=\(token)\r\n\r\n")
                // Nothing at all, not even the headers, while the host shows no picture.
                #expect(try await conn.readToEnd().isEmpty)
            }
            // The server noticed the viewer leaving although it never wrote to it.
            try await eventually("viewer gone") { await sim.state().mjpegViewers == 0 }
            sim.setHostPower(true)
            try await withConnection(sim.port) { conn in
                try await conn.send("GET /api/stream/mjpeg HTTP/1.1\r\nHost: x\r\nCookie: nano-kvm-token=\(token)\r\n\r\n")
                _ = try await conn.readHead()
                var pending: [UInt8] = []
                _ = try await readPart(conn, pending: &pending)
                // Detection on and a static screen: the capture loop stops delivering frames.
                _ = try await sim.post("/api/stream/mjpeg/detect", #"{"enabled":true}"#, token: token)
                try await Task.sleep(for: .milliseconds(200))
                let before = await sim.state().mjpegFramesDelivered
                try await Task.sleep(for: .milliseconds(400))
                #expect(await sim.state().mjpegFramesDelivered == before)
                // A change on screen produces the next frame.
                _ = try await sim.post("/api/hid/paste", #"{"content":"x"}"#, token: token)
                try await eventually("a frame after the change") { await sim.state().mjpegFramesDelivered == before + 1 }
                let part = try await readPart(conn, pending: &pending)
                #expect(part.jpeg.starts(with: [0xFF, 0xD8]))
            }
        }
    }

    @Test func truncatedPartFaults() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                sim.inject(.truncateMJPEGPartAndContinue)
                try await conn.send("GET /api/stream/mjpeg HTTP/1.1\r\nHost: x\r\nCookie: nano-kvm-token=\(token)\r\n\r\n")
                _ = try await conn.readHead()
                let cut = try #require(try await conn.readChunk())
                let text = String(decoding: cut.prefix(80), as: UTF8.self)
                let declared = try #require(text.components(separatedBy: "\r\n").first { $0.hasPrefix("Content-Length: ") })
                let length = try #require(Int(declared.dropFirst(16)))
                #expect(cut.count < length)
                var pending = try #require(try await conn.readChunk())
                #expect(pending.starts(with: Array("--frame\r\n".utf8)))
                _ = try await readPart(conn, pending: &pending)
                sim.inject(.truncateNextMJPEGPart)
                // The stream then ends without the terminating chunk.
                let rest = try await conn.readToEnd()
                #expect(!rest.isEmpty)
                #expect(!String(decoding: rest, as: UTF8.self).hasSuffix("0\r\n\r\n"))
            }
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct LifecycleTests {
    @Test func mjpegEndsCleanlyWhenTheSessionIsRevoked() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                try await conn.send("GET /api/stream/mjpeg HTTP/1.1\r\nHost: x\r\nCookie: nano-kvm-token=\(token)\r\n\r\n")
                _ = try await conn.readHead()
                _ = try #require(try await conn.readChunk())
                sim.revokeSessions(of: "admin")
                // The chunked body terminates (main cuts streams of revoked sessions).
                while try await conn.readChunk() != nil {}
            }
        }
    }

    @Test func jigglerMovesAfterInactivity() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            #expect(try await sim.post("/api/vm/mouse-jiggler/", #"{"enabled":true,"mode":"absolute"}"#, token: token).json?["code"] == 0)
            #expect(try await sim.get("/api/vm/mouse-jiggler", token: token).text == #"{"code":0,"msg":"success","data":{"enabled":true,"mode":"absolute"}}"#)
            try await eventually("jiggler reports", timeout: 3) { sim.reports.filter { $0.source == .jiggler }.count >= 2 }
            #expect(sim.reports.first { $0.source == .jiggler }?.bytes == [0, 0x00, 0x3F, 0x00, 0x3F, 0])
            _ = try await sim.post("/api/vm/mouse-jiggler/", #"{"enabled":false}"#, token: token)
        }
    }

    @Test func startInBackgroundFromAPlainThread() async throws {
        let sim = NanoKVMSimulator(configuration: .fast(.legacy))
        let port = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
            let thread = Thread {
                sim.startInBackground { result in continuation.resume(with: result.mapError { $0 as any Error }) }
            }
            thread.start()
        }
        #expect(port == sim.port && port > 0)
        #expect(try await sim.get("/api/storage/images", token: nil).status == 401)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            sim.stopInBackground { continuation.resume() }
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct FaultAndInspectionTests {
    @Test func requestFaults() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            sim.inject(.http500(path: "/api/vm/info"))
            #expect(try await sim.get("/api/vm/hostname", token: token).status == 200)
            let failed = try await sim.get("/api/vm/info", token: token)
            #expect(failed.status == 500 && failed.body.isEmpty)
            #expect(try await sim.get("/api/vm/info", token: token).status == 200)
            sim.inject(.malformedJSON())
            #expect(try await sim.get("/api/vm/info", token: token).json == nil)
            sim.inject(.notAnEnvelope())
            #expect(try await sim.get("/api/vm/info", token: token).text == #"{"hello":1}"#)
            sim.inject(.dropConnection())
            await #expect(throws: (any Error).self) { try await sim.get("/api/vm/info", token: token) }
            sim.inject(.delay(seconds: 0.3))
            let clock = ContinuousClock()
            let start = clock.now
            _ = try await sim.get("/api/vm/info", token: token)
            #expect(clock.now - start >= .milliseconds(300))
            sim.inject(.expireTokens)
            #expect(try await sim.get("/api/vm/info", token: token).status == 401)
        }
    }

    @Test func inspectionEndpoints() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            _ = try await sim.post("/api/hid/paste", #"{"content":"hi"}"#, token: token)
            let state = try await sim.get("/__sim/state", token: nil)
            #expect(state.json?["console"]?.stringValue?.hasSuffix("login: hi") == true)
            #expect(state.json?["reportCount"] == 5)
            let reports = try await sim.get("/__sim/reports?since=4", token: nil)
            #expect(reports.json?["reports"]?.arrayValue?.count == 1)
            #expect(try await sim.post("/__sim/fault", #"{"fault":"http500","path":"/api/vm/hostname"}"#, token: nil).status == 200)
            #expect(try await sim.get("/api/vm/hostname", token: token).status == 500)
            #expect(try await sim.post("/__sim/power", #"{"on":false}"#, token: nil).status == 200)
            #expect(await sim.state().poweredOn == false)
            let log = sim.requestLog
            #expect(log.contains { $0.path == "/api/hid/paste" && $0.hadCookie && $0.status == 200 })
        }
    }

    @Test func stopClosesEverything() async throws {
        let sim = NanoKVMSimulator(configuration: .fast())
        try await sim.start()
        let port = sim.port
        #expect(port > 0)
        #expect(sim.baseURL == "http://127.0.0.1:\(port)")
        let token = try await sim.login()
        let (started, startedSignal) = AsyncStream<Void>.makeStream()
        let stream = Task {
            try await withConnection(port) { conn in
                try await conn.send("GET /api/stream/mjpeg HTTP/1.1\r\nHost: x\r\nCookie: nano-kvm-token=\(token)\r\n\r\n")
                _ = try await conn.readHead()
                startedSignal.yield()
                return try await conn.readToEnd().count
            }
        }
        for await _ in started { break }
        await sim.stop()
        // The stream ended (the connection closed) rather than hanging until the watchdog.
        let clock = ContinuousClock()
        let start = clock.now
        _ = try await stream.value
        #expect(clock.now - start < .seconds(10))
        #expect(await sim.state().mjpegViewers == 0)
    }
}

@Suite(.timeLimit(.minutes(1))) struct CryptoTests {
    @Test func documentedTestVector() {
        let field = DeviceCrypto.encrypt("admin", salt: [0, 1, 2, 3, 4, 5, 6, 7])
        #expect(field == "U2FsdGVkX18AAQIDBAUGB7RQW%2Bo4DxJ1XwZq5sFeCig%3D")
        let (key, iv) = DeviceCrypto.deriveKey(salt: [0, 1, 2, 3, 4, 5, 6, 7])
        #expect(key.map { String(format: "%02X", $0) }.joined() == "68C4C5F634526FEA9D881610BB426AE2459F0434F624687814318948D791AD16")
        #expect(iv.map { String(format: "%02X", $0) }.joined() == "C6F7C398D51A352A6906B5AC0698F8DB")
        #expect(DeviceCrypto.decodeDecrypt(field) == .plaintext(Array("admin".utf8)))
        #expect(NanoKVMSimulator.deobfuscate(NanoKVMSimulator.obfuscate("pässwörd +/=")) == "pässwörd +/=")
    }

    @Test func goCompatibleDecoding() {
        #expect(DeviceCrypto.decodeDecrypt("%zz") == .unescapeError)
        #expect(DeviceCrypto.decodeDecrypt("admin") == .plaintext([]))
        // Ciphertext of 2 bytes, of 0 bytes, and a padding byte larger than the block: panics.
        #expect(DeviceCrypto.decodeDecrypt("U2FsdGVkX18AAQIDBAUGBwAB") == .panic)
        #expect(DeviceCrypto.decodeDecrypt(GoBase64.encode(Array("Salted__".utf8) + [0, 1, 2, 3, 4, 5, 6, 7])) == .panic)
        // Go returns the bytes before a corrupt quantum.
        #expect(GoBase64.decodeLenient(Array("QUJD!!!!".utf8)).bytes == Array("ABC".utf8))
        #expect(GoBase64.decodeLenient(Array("QUI=".utf8)) == (Array("AB".utf8), true))
        #expect(GoURL.queryUnescape("a+b%2B") == Array("a b+".utf8))
        #expect(GoJSON.encodeString(["a": "<&>\u{2028}\n\u{7F}"]) == #"{"a":"\u003c\u0026\u003e\u2028\n\#u{7F}"}"#)
    }
}
