// One video frame: a JPEG as received from the MJPEG stream (width and height read from its
// header, pixels decoded only when asked for and then cached), or pixels (a crop). Reading
// pixels, cropping by fractions, comparing two frames with a per-pixel tolerance so JPEG noise
// does not count as change, and saving as .jpg (the received bytes) or .png.

import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A rectangle of the screen in fractions of its width and height (0…1), as the Lua API takes it.
public struct ScreenArea: Sendable, Equatable, CustomStringConvertible {
    public let x: Double
    public let y: Double
    public let width: Double
    public let height: Double

    /// The whole screen.
    public static let full = ScreenArea(unchecked: 0, 0, 1, 1)

    /// Raises `usage` unless `x`, `y` ≥ 0, `width`, `height` > 0 and the area lies within the screen.
    public init(x: Double, y: Double, width: Double, height: Double) throws(NanoKVMError) {
        let slack = 1e-9
        for (name, value) in [("x", x), ("y", y), ("w", width), ("h", height)] where !value.isFinite {
            throw NanoKVMError(.usage, "area \(name) must be a number between 0 and 1, got \(value)")
        }
        guard x >= 0, y >= 0, x < 1, y < 1 else {
            throw NanoKVMError(.usage, "area x and y must be fractions in 0…1 (got x=\(x), y=\(y))")
        }
        guard width > 0, height > 0, x + width <= 1 + slack, y + height <= 1 + slack else {
            throw NanoKVMError(
                .usage, "area w and h must be positive fractions with x+w ≤ 1 and y+h ≤ 1 (got x=\(x), y=\(y), w=\(width), h=\(height))")
        }
        self.init(unchecked: x, y, min(width, 1 - x), min(height, 1 - y))
    }

    private init(unchecked x: Double, _ y: Double, _ width: Double, _ height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    /// The pixel rectangle of this area in an image of `imageWidth`×`imageHeight` (at least
    /// one pixel, always inside the image).
    public func pixelRect(imageWidth: Int, imageHeight: Int) -> (x: Int, y: Int, width: Int, height: Int) {
        func span(_ start: Double, _ length: Double, _ size: Int) -> (Int, Int) {
            let first = min(max(Int((start * Double(size)).rounded(.down)), 0), size - 1)
            let end = min(max(Int(((start + length) * Double(size)).rounded()), first + 1), size)
            return (first, end - first)
        }
        let (px, pw) = span(x, width, max(imageWidth, 1))
        let (py, ph) = span(y, height, max(imageHeight, 1))
        return (px, py, pw, ph)
    }

    public var description: String { "{x=\(x), y=\(y), w=\(width), h=\(height)}" }
}

/// One frame of the screen. Cheap to copy; the pixels are decoded once, on first use, and
/// shared by all copies (thread-safe).
public struct Frame: Sendable, CustomStringConvertible {
    public let width: Int
    public let height: Int
    /// `MonotonicClock.now()` when the frame arrived (for a crop: the original's time).
    public let time: Double
    /// Position in the device's stream as this client counted it (0 for frames made here).
    public let sequence: Int
    let storage: FrameStorage

    /// Per-pixel tolerance of `diff`: a pixel has changed when one of its channels differs by
    /// more than this. Measured on the simulator's frames at JPEG quality 50–100
    /// (ScreenTests "tolerance calibration"): decoding and re-encoding identical content at
    /// the same quality moves at most 2 pixels by more than 12 and none by more than 16; 24
    /// leaves a margin of 1.5×.
    public static let noiseTolerance = 24

    /// A changed pixel marks the pixels within this distance as changed too (a 9×9 square,
    /// about one JPEG block), so a change counts by the area it disturbs rather than by how
    /// sharply the encoder kept it: at quality 100 one typed character changes only 36–75
    /// pixels of a 1280×720 frame, 4 px around them about 250–500 (0.0003–0.0005).
    public static let changeRadius = 4

    /// Default `threshold` of the waits: the fraction of pixels that must change.
    public static let defaultChangeThreshold = 0.0002

    /// A frame of JPEG bytes; raises `protocol` when they have no readable JPEG frame header.
    public init(jpeg: [UInt8], time: Double = MonotonicClock.now(), sequence: Int = 0) throws(NanoKVMError) {
        guard let size = JPEGCodec.dimensions(jpeg) else {
            throw NanoKVMError(.protocol, "not a JPEG image (no frame header)")
        }
        guard size.width <= JPEGCodec.maximumSide, size.height <= JPEGCodec.maximumSide else {
            throw NanoKVMError(.protocol, "JPEG size \(size.width)x\(size.height) is out of range")
        }
        width = size.width
        height = size.height
        self.time = time
        self.sequence = sequence
        storage = FrameStorage(jpeg: jpeg, image: nil)
    }

    /// A frame of pixels (saved as .jpg by encoding them).
    public init(image: RGBImage, time: Double = MonotonicClock.now()) {
        width = image.width
        height = image.height
        self.time = time
        sequence = 0
        storage = FrameStorage(jpeg: nil, image: image)
    }

    /// The JPEG as received, or nil for a pixel frame (use `jpeg()`).
    public var receivedJPEG: [UInt8]? { storage.jpeg }

    /// The JPEG bytes: as received, or (for a pixel frame) encoded at quality 92, once.
    public func jpeg() throws(NanoKVMError) -> [UInt8] {
        if let bytes = storage.jpeg { return bytes }
        if let cached = storage.encoded.withLock({ $0 }) { return cached }
        let bytes = try JPEGCodec.encode(try pixels())
        storage.encoded.withLock { $0 = bytes }
        return bytes
    }

    /// Size in bytes of the JPEG (a pixel frame is encoded for it).
    public var size: Int {
        if let bytes = storage.jpeg { return bytes.count }
        return (try? jpeg().count) ?? 0
    }

    /// The decoded pixels (decoded on first use and cached). Raises `protocol` for an
    /// undecodable JPEG.
    public func pixels() throws(NanoKVMError) -> RGBImage {
        if let image = storage.image { return image }
        if let cached = storage.decoded.withLock({ $0 }) { return cached }
        guard let bytes = storage.jpeg else { throw NanoKVMError(.protocol, "frame has no data") }  // safe: one of the two is set
        let image = try JPEGCodec.decode(bytes)
        guard image.width == width, image.height == height else {
            throw NanoKVMError(.protocol, "JPEG header says \(width)x\(height) but decodes to \(image.width)x\(image.height)")
        }
        storage.decoded.withLock { $0 = image }
        return image
    }

    /// Whether the pixels are already decoded (diagnostics and tests).
    public var isDecoded: Bool { storage.image != nil || storage.decoded.withLock { $0 != nil } }

    /// `r, g, b` of the pixel at (`x`, `y`), counted from the top left. Raises `usage` outside
    /// the frame.
    public func pixel(x: Int, y: Int) throws(NanoKVMError) -> (r: UInt8, g: UInt8, b: UInt8) {
        guard x >= 0, y >= 0, x < width, y < height else {
            throw NanoKVMError(.usage, "pixel (\(x), \(y)) is outside the \(width)x\(height) frame (0…\(width - 1), 0…\(height - 1))")
        }
        guard let value = try pixels().pixel(x: x, y: y) else {
            throw NanoKVMError(.usage, "pixel (\(x), \(y)) is outside the frame")  // safe: checked above
        }
        return value
    }

    /// The part of the frame inside `area` as a pixel frame.
    public func crop(_ area: ScreenArea) throws(NanoKVMError) -> Frame {
        let image = try pixels()
        let rect = area.pixelRect(imageWidth: width, imageHeight: height)
        if rect.x == 0, rect.y == 0, rect.width == width, rect.height == height { return self }
        var out = [UInt8](repeating: 0, count: rect.width * rect.height * 3)
        let rowBytes = rect.width * 3
        image.pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
                for row in 0..<rect.height {
                    let from = ((rect.y + row) * width + rect.x) * 3
                    (dst + row * rowBytes).update(from: src + from, count: rowBytes)
                }
            }
        }
        guard let cropped = RGBImage(width: rect.width, height: rect.height, pixels: out) else {
            throw NanoKVMError(.usage, "empty crop \(area)")  // safe: pixelRect is at least 1×1
        }
        return Frame(image: cropped, time: time)
    }

    /// The fraction (0…1) of the pixels in `area` that changed from `other`: within
    /// `radius` pixels of a pixel whose colour differs by more than `tolerance` in some
    /// channel (`Frame.noiseTolerance`, `Frame.changeRadius`; radius 0 counts the differing
    /// pixels alone). Frames of different sizes differ everywhere (1). Identical JPEG bytes
    /// compare equal without decoding.
    public func diff(
        _ other: Frame, area: ScreenArea = .full, tolerance: Int = Frame.noiseTolerance, radius: Int = Frame.changeRadius
    ) throws(NanoKVMError) -> Double {
        guard width == other.width, height == other.height else { return 1 }
        if let mine = storage.jpeg, let theirs = other.storage.jpeg, mine == theirs { return 0 }
        let a = try pixels()
        let b = try other.pixels()
        let rect = area.pixelRect(imageWidth: width, imageHeight: height)
        let changed = Self.changedPixels(
            a.pixels, b.pixels, imageWidth: width, rect: rect, tolerance: min(max(tolerance, 0), 255), radius: min(max(radius, 0), 64))
        return Double(changed) / Double(rect.width * rect.height)
    }

    /// Pixels of `rect` within `radius` (Chebyshev distance, inside `rect`) of a pixel whose
    /// channels differ by more than `tolerance`. Two sliding windows: along each row, then
    /// down each column.
    static func changedPixels(
        _ a: [UInt8], _ b: [UInt8], imageWidth: Int, rect: (x: Int, y: Int, width: Int, height: Int), tolerance: Int, radius: Int
    ) -> Int {
        let w = rect.width
        let h = rect.height
        let limit = Int32(tolerance)
        var line = [UInt8](repeating: 0, count: w)
        // Row-dilated mask, one byte per pixel of the rectangle.
        var rows = [UInt8](repeating: 0, count: w * h)
        var raw = 0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                line.withUnsafeMutableBufferPointer { line in
                    rows.withUnsafeMutableBufferPointer { rows in
                        for y in 0..<h {
                            var o = ((rect.y + y) * imageWidth + rect.x) * 3
                            var inRow = 0
                            for x in 0..<w {
                                let dr = abs(Int32(pa[o]) - Int32(pb[o]))
                                let dg = abs(Int32(pa[o + 1]) - Int32(pb[o + 1]))
                                let db = abs(Int32(pa[o + 2]) - Int32(pb[o + 2]))
                                let differs: UInt8 = max(dr, max(dg, db)) > limit ? 1 : 0
                                line[x] = differs
                                inRow += Int(differs)
                                o += 3
                            }
                            guard inRow > 0 else { continue }
                            raw += inRow
                            // Sliding window [x - radius, x + radius] over `line`.
                            var count = 0
                            for x in 0..<min(radius, w) { count += Int(line[x]) }
                            let out = y * w
                            for x in 0..<w {
                                if x + radius < w { count += Int(line[x + radius]) }
                                rows[out + x] = count > 0 ? 1 : 0
                                if x - radius >= 0 { count -= Int(line[x - radius]) }
                            }
                        }
                    }
                }
            }
        }
        guard raw > 0 else { return 0 }
        guard radius > 0 else { return raw }
        // Sliding window [y - radius, y + radius] down each column.
        var columns = [Int32](repeating: 0, count: w)
        var changed = 0
        rows.withUnsafeBufferPointer { rows in
            columns.withUnsafeMutableBufferPointer { columns in
                for y in 0..<min(radius, h) {
                    for x in 0..<w { columns[x] += Int32(rows[y * w + x]) }
                }
                for y in 0..<h {
                    if y + radius < h {
                        let row = (y + radius) * w
                        for x in 0..<w { columns[x] += Int32(rows[row + x]) }
                    }
                    for x in 0..<w where columns[x] > 0 { changed += 1 }
                    if y - radius >= 0 {
                        let row = (y - radius) * w
                        for x in 0..<w { columns[x] -= Int32(rows[row + x]) }
                    }
                }
            }
        }
        return changed
    }

    /// Saves to `path`: `.jpg`/`.jpeg` as received (a pixel frame is encoded), `.png`
    /// converted. Raises `usage` for another extension or a file that cannot be written.
    public func save(to path: String) throws(NanoKVMError) {
        let bytes: [UInt8]
        switch try ImageFileType(path: path) {
        case .jpeg: bytes = try jpeg()
        case .png: bytes = try PNGWriter.encode(try pixels())
        }
        try FileOutput.writeFile(bytes, to: path)
    }

    /// PNG bytes of the frame.
    public func png() throws(NanoKVMError) -> [UInt8] { try PNGWriter.encode(try pixels()) }

    public var description: String { "Frame \(width)x\(height) (\(size) bytes)" }
}

/// The shared, immutable-after-decoding storage of a frame.
final class FrameStorage: Sendable {
    let jpeg: [UInt8]?
    let image: RGBImage?
    let decoded = Mutex<RGBImage?>(nil)
    let encoded = Mutex<[UInt8]?>(nil)

    init(jpeg: [UInt8]?, image: RGBImage?) {
        self.jpeg = jpeg
        self.image = image
    }
}

/// Image file types `save` writes, by extension.
public enum ImageFileType: Sendable {
    case jpeg
    case png

    /// Raises `usage` unless `path` ends in `.jpg`, `.jpeg` or `.png` (any case).
    public init(path: String) throws(NanoKVMError) {
        let lower = path.lowercased()
        if lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") {
            self = .jpeg
        } else if lower.hasSuffix(".png") {
            self = .png
        } else {
            throw NanoKVMError(.usage, "the file name must end in .jpg, .jpeg or .png: '\(path)'")
        }
    }
}

/// Writing whole files and streams of bytes (POSIX, no Foundation).
enum FileOutput {
    static func writeFile(_ bytes: [UInt8], to path: String) throws(NanoKVMError) {
        guard !path.isEmpty, !path.utf8.contains(0) else { throw NanoKVMError(.usage, "invalid file name '\(path)'") }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot write", path) }
        defer { close(fd) }
        try writeAll(fd, bytes, path: path)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(NanoKVMError) {
        let result = bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> Result<Void, NanoKVMError> in
            do throws(NanoKVMError) {
                try writeAll(fd, buffer, path: path)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws(NanoKVMError) {
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let written = write(fd, base + offset, buffer.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw failure("cannot write", path) }
            offset += written
        }
    }

    static func failure(_ what: String, _ path: String) -> NanoKVMError {
        let reason = String(cString: strerror(errno))
        return NanoKVMError(.usage, "\(what) \(path): \(reason)")
    }
}
