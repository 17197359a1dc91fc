// MJPEG parser throughput next to a plain memchr scan of the same bytes, in the same run.
//
//   swift run -c release --scratch-path .build-client MJPEGBenchmark [megabytes] [chunkKiB]
//
// Two in-memory streams of synthetic JPEG frames (real marker structure, noise as entropy
// data): one whose parts carry Content-Length (2.3.0+), one without (older firmware, where
// the parser follows the JPEG markers). Each is fed to MJPEGParser in fixed-size chunks, as
// the network would deliver it. The baseline walks the same chunks with memchr for the
// boundary's first byte, the least work any boundary scanner must do.

import NanoKVM

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
    let length = payload.count + 2
    return [0xFF, marker, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
}

/// A JPEG-shaped frame of about `size` bytes.
func makeJPEG(size: Int, random: inout SplitMix) -> [UInt8] {
    var out: [UInt8] = [0xFF, 0xD8]
    out += segment(0xE0, Array("JFIF\0".utf8) + [1, 1, 0, 0, 1, 0, 1, 0, 0])
    out += segment(0xDB, [0] + [UInt8](repeating: 16, count: 64))
    out += segment(0xC0, [8, 0x04, 0x38, 0x07, 0x80, 1, 1, 0x11, 0])
    out += segment(0xC4, [0] + [UInt8](repeating: 1, count: 16) + (0..<16).map { UInt8($0) })
    out += [0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0]
    out.reserveCapacity(size + 1024)
    while out.count < size {
        var word = random.next()
        for _ in 0..<8 {
            let byte = UInt8(truncatingIfNeeded: word)
            word >>= 8
            out.append(byte)
            if byte == 0xFF { out.append(0x00) }  // byte stuffing, as in real entropy data
        }
    }
    out += [0xFF, 0xD9]
    return out
}

func makeStream(megabytes: Int, contentLength: Bool) -> (bytes: [UInt8], frames: Int) {
    var random = SplitMix(state: contentLength ? 1 : 2)
    var stream: [UInt8] = []
    stream.reserveCapacity(megabytes << 20 + (1 << 20))
    var frames = 0
    while stream.count < megabytes << 20 {
        // 60–160 KB: a 1080p desktop at quality 80.
        let jpeg = makeJPEG(size: 60_000 + Int(random.next() % 100_000), random: &random)
        var header = "--frame\r\nContent-Type: image/jpeg\r\n"
        if contentLength { header += "Content-Length: \(jpeg.count)\r\n" }
        header += "\r\n"
        stream += Array(header.utf8)
        stream += jpeg
        stream += [0x0D, 0x0A]
        frames += 1
    }
    return (stream, frames)
}

func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// Best of `runs` timings of `body`, which returns a checksum so nothing is optimised away.
func best(_ runs: Int, _ body: () -> Int) -> (seconds: Double, checksum: Int) {
    var fastest = Double.infinity
    var checksum = 0
    for _ in 0..<runs {
        let start = now()
        checksum = body()
        fastest = min(fastest, now() - start)
    }
    return (fastest, checksum)
}

let arguments = CommandLine.arguments
let megabytes = arguments.count > 1 ? max(8, Int(arguments[1]) ?? 128) : 128
let chunkSize = (arguments.count > 2 ? max(1, Int(arguments[2]) ?? 16) : 16) << 10
let runs = 5

#if DEBUG
print("warning: debug build; run with -c release for meaningful numbers")
#endif
print("MJPEG parser vs memchr, \(megabytes) MiB per stream, \(chunkSize >> 10) KiB chunks, best of \(runs)")

for contentLength in [true, false] {
    let (stream, frameCount) = makeStream(megabytes: megabytes, contentLength: contentLength)
    let megabyteCount = Double(stream.count) / 1_048_576

    let memchrResult = stream.withUnsafeBytes { raw -> (seconds: Double, checksum: Int) in
        guard let base = raw.baseAddress else { return (0, 0) }
        return best(runs) {
            var hits = 0
            var offset = 0
            while offset < raw.count {
                let end = min(raw.count, offset + chunkSize)
                var position = offset
                while position < end, let hit = memchr(base + position, Int32(UInt8(ascii: "-")), end - position) {
                    hits += 1
                    position = base.distance(to: UnsafeRawPointer(hit)) + 1
                }
                offset = end
            }
            return hits
        }
    }

    let parserResult = stream.withUnsafeBytes { raw -> (seconds: Double, checksum: Int) in
        best(runs) {
            var parser = MJPEGParser()
            var frames = 0
            var bytes = 0
            var offset = 0
            while offset < raw.count {
                let end = min(raw.count, offset + chunkSize)
                parser.feed(UnsafeRawBufferPointer(rebasing: raw[offset..<end])) { frame in
                    frames += 1
                    bytes &+= frame.count
                }
                offset = end
            }
            return frames == frameCount && parser.skippedParts == 0 ? bytes : -1
        }
    }

    let memchrSpeed = megabyteCount / memchrResult.seconds
    let parserSpeed = megabyteCount / parserResult.seconds
    let label = contentLength ? "with Content-Length   " : "without Content-Length"
    print(
        "\(label): parser \(Int(parserSpeed)) MB/s, memchr \(Int(memchrSpeed)) MB/s, ratio \(Int((parserSpeed / memchrSpeed * 100).rounded()))%"
            + (parserResult.checksum < 0 ? "  (FRAME COUNT MISMATCH)" : "") + "  [\(frameCount) frames]")
}
