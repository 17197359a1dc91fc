// Incremental parser for `multipart/x-mixed-replace` MJPEG streams (protocol §9.1).
//
// Feed it byte chunks of any size (one byte at a time works); it hands out whole JPEG frames.
// Parts with `Content-Length` (2.3.0+) are copied by length and then checked (SOI at the start,
// EOI near the end, CRLF after). Parts without it (2.1.1–2.2.9, the 2.0.x streamer) are
// followed through the JPEG marker structure: segments are skipped by their length (so an
// EXIF thumbnail's EOI inside an APPn segment does not end the frame), entropy-coded data is
// scanned with memchr for 0xFF, and the frame ends at the real EOI — at once, without waiting
// for the next boundary. A part that turns out truncated or garbled is dropped (counted in
// `skippedParts`) and parsing resynchronises at the next boundary, which is searched for
// inside the bytes already taken, so the part that follows a truncated one is not lost.
// Only the frame being assembled is buffered.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct MJPEGParser: Sendable {
    /// The multipart boundary without the leading dashes (`frame` on the NanoKVM).
    public let boundary: String
    /// Frames larger than this are skipped (and counted).
    public let maximumFrameSize: Int
    /// Whole frames handed out so far.
    public private(set) var framesParsed = 0
    /// Parts dropped because they were truncated, garbled, not JPEG, empty or too large.
    public private(set) var skippedParts = 0

    /// `--` + boundary.
    private let delimiter: [UInt8]
    /// Knuth–Morris–Pratt failure table of `delimiter`, for matches split across chunks.
    private let failure: [Int]
    private var state: State = .seekBoundary(matched: 0)
    /// The frame being assembled (the only large buffer).
    private var body: [UInt8] = []
    private var header: [UInt8] = []
    private var boundaryLineLength = 0
    private var expectedFrameSize = 64 << 10

    private enum State: Sendable {
        /// Looking for `--boundary`; `matched` bytes of it are already seen.
        case seekBoundary(matched: Int)
        /// After the delimiter: skip to the end of its line.
        case boundaryLine
        /// Reading part headers up to the blank line.
        case headers
        /// Copying a body of known length.
        case lengthBody(remaining: Int)
        /// After a length-delimited body: expect CRLF.
        case lengthTrailer(sawCR: Bool)
        /// Following the JPEG structure of a body without length.
        case scanBody(JPEGScan)
    }

    private enum JPEGScan: Sendable {
        case soi0, soi1
        /// Expect the 0xFF of the next marker (between segments).
        case marker
        case markerCode
        case length0(code: UInt8)
        case length1(code: UInt8, high: UInt8)
        case skip(remaining: Int, thenEntropy: Bool)
        /// Entropy-coded data after SOS.
        case entropy
        case entropyFF
    }

    public init(boundary: String = "frame", maximumFrameSize: Int = 32 << 20) {
        var name = boundary
        // Some servers put the dashes into the header parameter itself.
        while name.hasPrefix("--") && name.count > 2 { name.removeFirst(2) }
        self.boundary = name.isEmpty ? "frame" : name
        self.maximumFrameSize = max(1024, maximumFrameSize)
        let delimiter = Array("--\(self.boundary)".utf8)
        self.delimiter = delimiter
        var failure = [Int](repeating: 0, count: delimiter.count)
        var k = 0
        for index in 1..<delimiter.count {
            while k > 0 && delimiter[index] != delimiter[k] { k = failure[k - 1] }
            if delimiter[index] == delimiter[k] { k += 1 }
            failure[index] = k
        }
        self.failure = failure
    }

    /// The boundary parameter of a `multipart/x-mixed-replace; boundary=…` content type.
    public static func boundary(fromContentType contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingSpaces().lowercased() == "boundary" else { continue }
            var value = pair[1].trimmingSpaces()
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// Bytes of the frame currently being assembled (never more than one frame).
    public var bufferedBytes: Int { body.count + header.count }

    // MARK: Feeding

    /// Feeds a chunk; `onFrame` receives each complete JPEG in order.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, onFrame: ([UInt8]) -> Void) {
        let bytes = chunk.bindMemory(to: UInt8.self)
        var refeed = process(bytes, onFrame: onFrame)
        // A resynchronisation hands back the bytes to look at again (from the next boundary on).
        while let again = refeed {
            refeed = again.withUnsafeBufferPointer { process($0, onFrame: onFrame) }
        }
    }

    /// Feeds a chunk and returns the frames it completed.
    public mutating func feed<Bytes: Sequence<UInt8>>(_ chunk: Bytes) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        let handled: Void? = chunk.withContiguousStorageIfAvailable { buffer in
            feed(UnsafeRawBufferPointer(buffer)) { frames.append($0) }
        }
        if handled == nil {
            let copy = Array(chunk)
            copy.withUnsafeBytes { feed($0) { frames.append($0) } }
        }
        return frames
    }

    /// Processes `input`; returns bytes to process again after a resynchronisation.
    private mutating func process(_ input: UnsafeBufferPointer<UInt8>, onFrame: ([UInt8]) -> Void) -> [UInt8]? {
        guard let base = input.baseAddress else { return nil }
        let count = input.count
        var index = 0
        while index < count {
            switch state {
            case .seekBoundary(var matched):
                if matched == 0 {
                    // Fast path: jump to the next byte that can start the delimiter.
                    guard let hit = memchr(base + index, Int32(delimiter[0]), count - index) else {
                        index = count
                        continue
                    }
                    index = base.distance(to: hit.assumingMemoryBound(to: UInt8.self)) + 1
                    matched = 1
                }
                while index < count && matched > 0 && matched < delimiter.count {
                    let byte = base[index]
                    while matched > 0 && byte != delimiter[matched] { matched = failure[matched - 1] }
                    if byte == delimiter[matched] { matched += 1 }
                    index += 1
                }
                if matched == delimiter.count {
                    state = .boundaryLine
                    boundaryLineLength = 0
                } else {
                    state = .seekBoundary(matched: matched)
                }

            case .boundaryLine:
                let byte = base[index]
                index += 1
                if byte == UInt8(ascii: "\n") {
                    state = .headers
                    header.removeAll(keepingCapacity: true)
                } else {
                    boundaryLineLength += 1
                    // `--frame--` (close), spaces and CR are fine; a long line is not a boundary.
                    if boundaryLineLength > 128 { state = .seekBoundary(matched: 0) }
                }

            case .headers:
                let byte = base[index]
                if header.isEmpty && byte == 0xFF {
                    // No headers at all: the JPEG starts right after the boundary line.
                    startBody(contentLength: nil)
                    continue
                }
                header.append(byte)
                index += 1
                if byte == UInt8(ascii: "\n") && headerComplete() {
                    let length = parseContentLength()
                    header.removeAll(keepingCapacity: true)
                    if let length {
                        if length <= 0 || length > maximumFrameSize {
                            // Empty or oversized: drop it and look for the next part.
                            skippedParts += 1
                            state = .seekBoundary(matched: 0)
                        } else {
                            startBody(contentLength: length)
                        }
                    } else {
                        startBody(contentLength: nil)
                    }
                } else if header.count > 8192 {
                    // No blank line: garbage; search the next boundary in what we took.
                    let again = Array(header.dropFirst()) + Array(input[index...])
                    header.removeAll(keepingCapacity: true)
                    skippedParts += 1
                    state = .seekBoundary(matched: 0)
                    return again
                }

            case .lengthBody(let remaining):
                let take = min(remaining, count - index)
                body.append(contentsOf: UnsafeBufferPointer(start: base + index, count: take))
                index += take
                state = remaining == take ? .lengthTrailer(sawCR: false) : .lengthBody(remaining: remaining - take)

            case .lengthTrailer(let sawCR):
                let byte = base[index]
                if byte == UInt8(ascii: "\r") && !sawCR {
                    index += 1
                    state = .lengthTrailer(sawCR: true)
                } else if byte == UInt8(ascii: "\n") || (byte == UInt8(ascii: "-") && !sawCR) {
                    // CRLF (or a bare LF, or the next boundary right away) ends the part.
                    if byte == UInt8(ascii: "\n") { index += 1 }
                    guard isPlausibleJPEG(body) else { return resynchronise(rest: input, from: index) }
                    emit(onFrame)
                    state = .seekBoundary(matched: 0)
                } else {
                    // The declared length ended inside other data: the part was truncated.
                    return resynchronise(rest: input, from: index)
                }

            case .scanBody(var scan):
                let start = index
                let outcome = Self.scanJPEG(&scan, base, from: &index, count: count)
                let taken = index - start
                if body.count + taken > maximumFrameSize {
                    body.removeAll(keepingCapacity: false)
                    skippedParts += 1
                    state = .seekBoundary(matched: 0)
                    continue
                }
                body.append(contentsOf: UnsafeBufferPointer(start: base + start, count: taken))
                switch outcome {
                case .needMore:
                    state = .scanBody(scan)
                case .end:
                    emit(onFrame)
                    state = .seekBoundary(matched: 0)
                case .garbled:
                    return resynchronise(rest: input, from: index)
                }
            }
        }
        return nil
    }

    private mutating func startBody(contentLength: Int?) {
        body.removeAll(keepingCapacity: true)
        if let contentLength {
            if body.capacity < contentLength { body.reserveCapacity(contentLength) }
            state = .lengthBody(remaining: contentLength)
        } else {
            if body.capacity < expectedFrameSize { body.reserveCapacity(expectedFrameSize) }
            state = .scanBody(.soi0)
        }
    }

    private mutating func emit(_ onFrame: ([UInt8]) -> Void) {
        var frame: [UInt8] = []
        swap(&frame, &body)
        framesParsed += 1
        expectedFrameSize = max(expectedFrameSize, frame.count + frame.count / 4)
        body.reserveCapacity(min(expectedFrameSize, maximumFrameSize))
        onFrame(frame)
    }

    /// Drops the current part and returns what to parse again: from the first delimiter found
    /// inside the part's bytes (after its first byte), else the tail that may start one, plus
    /// the rest of the input.
    private mutating func resynchronise(rest input: UnsafeBufferPointer<UInt8>, from index: Int) -> [UInt8] {
        skippedParts += 1
        var again: [UInt8]
        if let start = Self.find(delimiter, in: body, from: 1) {
            again = Array(body[start...])
        } else {
            again = Array(body.suffix(delimiter.count - 1))
        }
        if index < input.count { again.append(contentsOf: input[index...]) }
        body.removeAll(keepingCapacity: true)
        state = .seekBoundary(matched: 0)
        return again
    }

    // MARK: Helpers

    private func headerComplete() -> Bool {
        let n = header.count
        if n == 1 || (n == 2 && header[0] == UInt8(ascii: "\r")) { return true }  // no headers
        if n >= 2 && header[n - 2] == UInt8(ascii: "\n") { return true }
        if n >= 3 && header[n - 2] == UInt8(ascii: "\r") && header[n - 3] == UInt8(ascii: "\n") { return true }
        return false
    }

    /// `Content-Length` of the collected headers; nil when absent or unreadable.
    private func parseContentLength() -> Int? {
        var lineStart = 0
        for position in 0...header.count {
            guard position == header.count || header[position] == UInt8(ascii: "\n") else { continue }
            var line = header[lineStart..<position]
            lineStart = position + 1
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = String(decoding: line[..<colon], as: UTF8.self).trimmingCharactersSpaces().lowercased()
            guard name == "content-length" else { continue }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharactersSpaces()
            return Int(value)
        }
        return nil
    }

    private func isPlausibleJPEG(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return false }
        // EOI within the last bytes (encoders may pad a little after it).
        var position = bytes.count - 2
        let lowest = max(2, bytes.count - 34)
        while position >= lowest {
            if bytes[position] == 0xFF && bytes[position + 1] == 0xD9 { return true }
            position -= 1
        }
        return false
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard needle.count > 0, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        return haystack.withUnsafeBufferPointer { hay -> Int? in
            guard let base = hay.baseAddress else { return nil }
            var index = start
            let last = hay.count - needle.count
            while index <= last {
                guard let hit = memchr(base + index, Int32(needle[0]), last - index + 1) else { return nil }
                let position = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if memcmp(base + position, needle, needle.count) == 0 { return position }
                index = position + 1
            }
            return nil
        }
    }

    private enum ScanOutcome { case needMore, end, garbled }

    /// Follows the JPEG marker structure from `index`; stops after EOI, at a structural error,
    /// or at the end of the input.
    private static func scanJPEG(_ scan: inout JPEGScan, _ base: UnsafePointer<UInt8>, from index: inout Int, count: Int) -> ScanOutcome {
        while index < count {
            switch scan {
            case .soi0:
                guard base[index] == 0xFF else { return .garbled }
                index += 1
                scan = .soi1
            case .soi1:
                guard base[index] == 0xD8 else { return .garbled }
                index += 1
                scan = .marker
            case .marker:
                guard base[index] == 0xFF else { return .garbled }
                index += 1
                scan = .markerCode
            case .markerCode:
                let code = base[index]
                index += 1
                switch code {
                case 0xFF: break  // fill byte
                case 0xD9: return .end
                case 0x00, 0xD8: return .garbled
                case 0x01, 0xD0...0xD7: scan = .marker  // markers without a length
                default: scan = .length0(code: code)
                }
            case .length0(let code):
                scan = .length1(code: code, high: base[index])
                index += 1
            case .length1(let code, let high):
                let length = Int(high) << 8 | Int(base[index])
                index += 1
                guard length >= 2 else { return .garbled }
                let isScan = code == 0xDA
                scan = length == 2 ? (isScan ? .entropy : .marker) : .skip(remaining: length - 2, thenEntropy: isScan)
            case .skip(let remaining, let thenEntropy):
                let take = min(remaining, count - index)
                index += take
                scan = remaining == take ? (thenEntropy ? .entropy : .marker) : .skip(remaining: remaining - take, thenEntropy: thenEntropy)
            case .entropy:
                guard let hit = memchr(base + index, 0xFF, count - index) else {
                    index = count
                    return .needMore
                }
                index = base.distance(to: hit.assumingMemoryBound(to: UInt8.self)) + 1
                scan = .entropyFF
            case .entropyFF:
                let code = base[index]
                index += 1
                switch code {
                case 0x00, 0xD0...0xD7: scan = .entropy  // stuffed byte, restart marker
                case 0xFF: break  // fill byte
                case 0xD9: return .end
                case 0xD8: return .garbled  // a new image began: this one was cut off
                default: scan = .length0(code: code)  // DHT/SOS/… between scans (progressive)
                }
            }
        }
        return .needMore
    }
}

extension String {
    fileprivate func trimmingCharactersSpaces() -> String {
        Substring(self).trimmingSpaces()
    }
}
