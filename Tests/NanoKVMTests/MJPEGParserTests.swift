import Testing

@testable import NanoKVM

/// Builds JPEG-shaped byte strings: the marker structure is real, the pixels are noise.
struct SyntheticJPEG {
    var generator: SplitMix

    init(seed: UInt64) { generator = SplitMix(seed: seed) }

    /// - thumbnail: an APP1 segment that embeds a whole small JPEG (its own SOI…EOI).
    /// - restartMarkers: RSTn markers inside the entropy data.
    mutating func make(entropyBytes: Int, thumbnail: Bool = false, restartMarkers: Bool = false, oddAPP: Bool = false) -> [UInt8] {
        var out: [UInt8] = [0xFF, 0xD8]
        out += segment(0xE0, Array("JFIF\0".utf8) + [1, 1, 0, 0, 1, 0, 1, 0, 0])
        if thumbnail {
            var inner: [UInt8] = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0x22, 0xFF, 0x00, 0x33, 0xFF, 0xD9]
            inner += [0xFF, 0xD9]  // stray EOIs inside the thumbnail
            out += segment(0xE1, Array("Exif\0\0".utf8) + inner)
        }
        if oddAPP {
            // An APPn segment full of 0xFF, boundary-like text and CRLFs.
            out += segment(0xEC, [0xFF, 0xD9, 0xFF, 0xFF] + Array("\r\n--frame\r\nContent-Length: 5\r\n\r\n".utf8) + [0xFF, 0xD8])
            out += segment(0xEE, [])
        }
        out += segment(0xDB, [0] + (0..<64).map { _ in UInt8.random(in: 1...99, using: &generator) })
        out += segment(0xC0, [8, 0, 16, 0, 16, 1, 1, 0x11, 0])
        out += segment(0xC4, [0] + [UInt8](repeating: 1, count: 16) + (0..<16).map { UInt8($0) })
        out += [0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0]
        var restart: UInt8 = 0
        for index in 0..<entropyBytes {
            let byte = UInt8.random(in: 0...255, using: &generator)
            out.append(byte)
            if byte == 0xFF { out.append(0x00) }
            if restartMarkers && index % 997 == 996 {
                out += [0xFF, 0xD0 + restart]
                restart = (restart + 1) % 8
            }
        }
        out += [0xFF, 0xD9]
        return out
    }

    func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let length = payload.count + 2
        return [0xFF, marker, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func part(_ jpeg: [UInt8], contentLength: Bool, boundary: String = "frame") -> [UInt8] {
    var header = "--\(boundary)\r\nContent-Type: image/jpeg\r\n"
    if contentLength { header += "Content-Length: \(jpeg.count)\r\n" }
    header += "\r\n"
    return Array(header.utf8) + jpeg + Array("\r\n".utf8)
}

/// Feeds `stream` in chunks of the given sizes (cycled) and returns the frames.
func parse(_ stream: [UInt8], chunkSizes: [Int], parser: inout MJPEGParser, maxBuffered: inout Int) -> [[UInt8]] {
    var frames: [[UInt8]] = []
    var offset = 0
    var turn = 0
    while offset < stream.count {
        let size = max(1, chunkSizes[turn % chunkSizes.count])
        turn += 1
        let end = min(stream.count, offset + size)
        frames += parser.feed(stream[offset..<end])
        maxBuffered = max(maxBuffered, parser.bufferedBytes)
        offset = end
    }
    return frames
}

@Suite("MJPEG multipart parser", .timeLimit(.minutes(1)))
struct MJPEGParserTests {
    func frames(count: Int, seed: UInt64 = 1, size: Int = 3000, thumbnail: Bool = false, odd: Bool = false) -> [[UInt8]] {
        var maker = SyntheticJPEG(seed: seed)
        return (0..<count).map { index in
            maker.make(entropyBytes: size + index * 37, thumbnail: thumbnail, restartMarkers: index % 2 == 0, oddAPP: odd)
        }
    }

    @Test("Parts with Content-Length, any chunking", arguments: [[1], [7, 3, 1], [4096], [65536], [13, 1, 250, 2]])
    func withContentLength(chunks: [Int]) {
        let jpegs = frames(count: 6)
        let stream = jpegs.flatMap { part($0, contentLength: true) }
        var parser = MJPEGParser()
        var maxBuffered = 0
        let out = parse(stream, chunkSizes: chunks, parser: &parser, maxBuffered: &maxBuffered)
        #expect(out == jpegs)
        #expect(parser.skippedParts == 0)
        #expect(parser.framesParsed == 6)
        #expect(maxBuffered <= (jpegs.map(\.count).max() ?? 0) + 128)
    }

    @Test("Parts without Content-Length end at the real EOI", arguments: [[1], [5, 9], [8192]])
    func withoutContentLength(chunks: [Int]) {
        let jpegs = frames(count: 5, thumbnail: true, odd: true)
        let stream = jpegs.flatMap { part($0, contentLength: false) }
        var parser = MJPEGParser()
        var maxBuffered = 0
        let out = parse(stream, chunkSizes: chunks, parser: &parser, maxBuffered: &maxBuffered)
        #expect(out == jpegs)
        #expect(parser.skippedParts == 0)
        #expect(maxBuffered <= (jpegs.map(\.count).max() ?? 0) + 128)
    }

    @Test("A frame without Content-Length is delivered before the next boundary arrives")
    func deliveredWithoutWaiting() {
        let jpeg = frames(count: 1)[0]
        var parser = MJPEGParser()
        let out = parser.feed(part(jpeg, contentLength: false))
        #expect(out == [jpeg])
        // With Content-Length the CRLF after the body completes the frame.
        var second = MJPEGParser()
        #expect(second.feed(part(jpeg, contentLength: true)) == [jpeg])
    }

    @Test("Truncated part with Content-Length: skipped, the next part survives", arguments: [[1], [3, 11], [100_000]])
    func truncatedWithLength(chunks: [Int]) {
        let jpegs = frames(count: 4)
        var stream: [UInt8] = part(jpegs[0], contentLength: true)
        // Declares the full length but only half the bytes follow, then the next part.
        let cut = Array(jpegs[1].prefix(jpegs[1].count / 2))
        stream += Array("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: \(jpegs[1].count)\r\n\r\n".utf8) + cut
        stream += part(jpegs[2], contentLength: true) + part(jpegs[3], contentLength: true)
        var parser = MJPEGParser()
        var maxBuffered = 0
        let out = parse(stream, chunkSizes: chunks, parser: &parser, maxBuffered: &maxBuffered)
        #expect(out == [jpegs[0], jpegs[2], jpegs[3]])
        #expect(parser.skippedParts == 1)
    }

    @Test("Truncated part without Content-Length: skipped, the next part survives", arguments: [[1], [4096]])
    func truncatedWithoutLength(chunks: [Int]) {
        let jpegs = frames(count: 3, thumbnail: true)
        let cut = Array(jpegs[1].prefix(jpegs[1].count * 2 / 3))
        let stream = part(jpegs[0], contentLength: false) + Array("--frame\r\nContent-Type: image/jpeg\r\n\r\n".utf8) + cut + Array("\r\n".utf8)
            + part(jpegs[2], contentLength: false)
        var parser = MJPEGParser()
        var maxBuffered = 0
        let out = parse(stream, chunkSizes: chunks, parser: &parser, maxBuffered: &maxBuffered)
        #expect(out == [jpegs[0], jpegs[2]])
        #expect(parser.skippedParts == 1)
    }

    @Test("Garbled parts are skipped and counted")
    func garbled() {
        let jpegs = frames(count: 2)
        var stream = Array("preamble text\r\n".utf8)
        stream += part(jpegs[0], contentLength: true)
        stream += Array("--frame\r\nContent-Type: image/jpeg\r\n\r\nthis is not a jpeg\r\n".utf8)  // no length, not JPEG
        stream += Array("--frame\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij\r\n".utf8)  // length, not JPEG
        stream += Array("--frame\r\nContent-Length: 0\r\n\r\n\r\n".utf8)  // empty
        stream += part(jpegs[1], contentLength: true)
        var parser = MJPEGParser()
        var maxBuffered = 0
        let out = parse(stream, chunkSizes: [1, 2, 3], parser: &parser, maxBuffered: &maxBuffered)
        #expect(out == jpegs)
        #expect(parser.skippedParts == 3)
    }

    @Test("Oversized frames are skipped without buffering them")
    func oversized() {
        var maker = SyntheticJPEG(seed: 9)
        let big = maker.make(entropyBytes: 50_000)
        let small = maker.make(entropyBytes: 500)
        let stream = part(big, contentLength: false) + part(small, contentLength: false) + part(big, contentLength: true) + part(small, contentLength: true)
        var parser = MJPEGParser(maximumFrameSize: 10_000)
        var maxBuffered = 0
        let out = parse(stream, chunkSizes: [1000], parser: &parser, maxBuffered: &maxBuffered)
        #expect(out == [small, small])
        #expect(parser.skippedParts == 2)
        #expect(maxBuffered <= 12_000)
    }

    @Test("Boundary from the content type; dashes in the parameter; closing boundary")
    func boundaries() {
        #expect(MJPEGParser.boundary(fromContentType: "multipart/x-mixed-replace; boundary=frame") == "frame")
        #expect(MJPEGParser.boundary(fromContentType: "multipart/x-mixed-replace;boundary=\"--myboundary\"") == "--myboundary")
        #expect(MJPEGParser.boundary(fromContentType: "image/jpeg") == nil)
        let jpegs = frames(count: 2)
        let stream = part(jpegs[0], contentLength: false, boundary: "myboundary") + part(jpegs[1], contentLength: true, boundary: "myboundary")
            + Array("--myboundary--\r\n".utf8)
        var parser = MJPEGParser(boundary: "--myboundary")
        #expect(parser.feed(stream) == jpegs)
        #expect(parser.skippedParts == 0)
    }

    @Test("Random chunking of a mixed stream never loses a good frame", arguments: 0..<20)
    func randomChunking(seed: Int) {
        var random = SplitMix(seed: UInt64(seed) + 100)
        var maker = SyntheticJPEG(seed: UInt64(seed))
        var jpegs: [[UInt8]] = []
        var stream: [UInt8] = []
        for index in 0..<8 {
            let jpeg = maker.make(entropyBytes: Int.random(in: 100...4000, using: &random), thumbnail: index % 3 == 0, oddAPP: index % 4 == 1)
            jpegs.append(jpeg)
            stream += part(jpeg, contentLength: Bool.random(using: &random))
        }
        let sizes = (0..<50).map { _ in Int.random(in: 1...700, using: &random) }
        var parser = MJPEGParser()
        var maxBuffered = 0
        let out = parse(stream, chunkSizes: sizes, parser: &parser, maxBuffered: &maxBuffered)
        #expect(out == jpegs)
        #expect(parser.skippedParts == 0)
    }
}
