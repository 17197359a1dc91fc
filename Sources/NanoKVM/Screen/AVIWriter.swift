// Motion-JPEG AVI (RIFF AVI 1.0), written as frames arrive: the headers first with
// placeholders, then one `00dc` chunk per JPEG inside the `movi` list, and at the end the
// `idx1` index and the patched sizes, frame count and frame rate (frames / recorded seconds).
// Only the index (16 bytes a frame) is kept in memory. Plays in ffmpeg/ffprobe, VLC, mpv and
// Windows players.
//
//   RIFF 'AVI '
//     LIST 'hdrl'
//       'avih' (56)                 main header
//       LIST 'strl'
//         'strh' (56)               stream header: vids / MJPG, scale/rate, length
//         'strf' (40)               BITMAPINFOHEADER, compression MJPG
//     LIST 'movi'
//       '00dc' <jpeg> [pad]         …
//     'idx1'                        16 bytes per frame: '00dc', AVIIF_KEYFRAME, offset, size

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class AVIWriter {
    public let path: String
    public let width: Int
    public let height: Int
    /// JPEGs written so far.
    public private(set) var frameCount = 0
    /// Bytes written so far (headers and chunks).
    public private(set) var fileSize = 0

    /// RIFF sizes are 32-bit, and many readers treat them as signed: stop before 2 GiB.
    public static let sizeLimit = Int(Int32.max) - (16 << 20)

    private var fd: Int32
    private var index: [UInt8] = []
    private var largestFrame = 0
    private var finished = false

    // Offsets of the fields patched at the end.
    private static let riffSizeOffset = 4
    private static let avihOffset = 32  // start of avih data: 'RIFF' sz 'AVI ' 'LIST' sz 'hdrl' 'avih' sz
    private static let strhOffset = 32 + 56 + 20  // + 'LIST' sz 'strl' 'strh' sz
    private static let headerSize = 224  // everything before the 'movi' LIST, padded with JUNK
    private static let moviSizeOffset = headerSize + 4
    /// Where the 'movi' fourcc is; idx1 offsets are relative to it.
    private static let moviFourCCOffset = headerSize + 8

    /// Creates (truncates) `path` and writes the headers. Raises `usage` when it cannot.
    public init(path: String, width: Int, height: Int) throws(NanoKVMError) {
        guard !path.isEmpty, !path.utf8.contains(0) else { throw NanoKVMError(.usage, "invalid file name '\(path)'") }
        guard width > 0, height > 0, width <= JPEGCodec.maximumSide, height <= JPEGCodec.maximumSide else {
            throw NanoKVMError(.usage, "video size \(width)x\(height) is out of range")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileOutput.failure("cannot write", path) }
        self.fd = fd
        self.path = path
        self.width = width
        self.height = height
        do {
            try FileOutput.writeAll(fd, Self.headers(width: width, height: height), path: path)
        } catch {
            close(fd)
            self.fd = -1
            throw error
        }
        fileSize = Self.headerSize + 12
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Whether `bytes` more of JPEG still fit under `sizeLimit`.
    public func fits(_ bytes: Int) -> Bool {
        fileSize + 8 + bytes + 1 + (frameCount + 1) * 16 + 8 <= Self.sizeLimit
    }

    /// Appends one JPEG. Raises `usage` when the file cannot be written or is full.
    public func append(_ jpeg: [UInt8]) throws(NanoKVMError) {
        guard !finished, fd >= 0 else { throw NanoKVMError(.usage, "the recording \(path) is already finished") }
        guard fits(jpeg.count) else { throw NanoKVMError(.usage, "the recording \(path) reached the AVI size limit (2 GiB)") }
        let offset = fileSize - Self.moviFourCCOffset
        var chunk: [UInt8] = Array("00dc".utf8)
        Self.appendUInt32(&chunk, jpeg.count)
        try FileOutput.writeAll(fd, chunk, path: path)
        try FileOutput.writeAll(fd, jpeg, path: path)
        if jpeg.count % 2 == 1 { try FileOutput.writeAll(fd, [0], path: path) }
        fileSize += 8 + jpeg.count + jpeg.count % 2
        index += Array("00dc".utf8)
        Self.appendUInt32(&index, 0x10)  // AVIIF_KEYFRAME
        Self.appendUInt32(&index, offset)
        Self.appendUInt32(&index, jpeg.count)
        frameCount += 1
        largestFrame = max(largestFrame, jpeg.count)
    }

    /// Writes the index and patches the headers for `seconds` of video (the frame rate is
    /// `frameCount / seconds`). The file is complete and playable afterwards.
    public func finish(seconds: Double) throws(NanoKVMError) {
        guard !finished, fd >= 0 else { return }
        finished = true
        defer {
            close(fd)
            fd = -1
        }
        let moviSize = fileSize - (Self.headerSize + 8)
        var idx1: [UInt8] = Array("idx1".utf8)
        Self.appendUInt32(&idx1, index.count)
        try FileOutput.writeAll(fd, idx1, path: path)
        try FileOutput.writeAll(fd, index, path: path)
        fileSize += 8 + index.count
        index = []

        // Rate as scale/rate = 1000/(fps·1000); at least one frame per hour, at most 1000 fps.
        let duration = seconds.isFinite && seconds > 0 ? seconds : Double(max(frameCount, 1)) / 30
        let fps = min(max(Double(frameCount) / duration, 1.0 / 3600), 1000)
        let rate = max(Int((fps * 1000).rounded()), 1)
        let microsecondsPerFrame = Int((1_000_000 / fps).rounded())
        let bytesPerSecond = Int((Double(fileSize) / duration).rounded())

        try patch(Self.riffSizeOffset, fileSize - 8)
        try patch(Self.moviSizeOffset, moviSize)
        try patch(Self.avihOffset + 0, microsecondsPerFrame)
        try patch(Self.avihOffset + 4, min(bytesPerSecond, Int(UInt32.max)))
        try patch(Self.avihOffset + 16, frameCount)
        try patch(Self.avihOffset + 28, largestFrame + 8)
        try patch(Self.strhOffset + 20, 1000)  // dwScale
        try patch(Self.strhOffset + 24, rate)  // dwRate
        try patch(Self.strhOffset + 32, frameCount)  // dwLength
        try patch(Self.strhOffset + 36, largestFrame + 8)  // dwSuggestedBufferSize
    }

    /// Closes the file without an index (a failed recording); the file stays as it is.
    public func abandon() {
        guard fd >= 0 else { return }
        finished = true
        close(fd)
        fd = -1
    }

    private func patch(_ offset: Int, _ value: Int) throws(NanoKVMError) {
        var bytes: [UInt8] = []
        Self.appendUInt32(&bytes, value)
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, 4, off_t(offset)) }
        guard written == 4 else { throw FileOutput.failure("cannot write", path) }
    }

    static func appendUInt32(_ bytes: inout [UInt8], _ value: Int) {
        let v = UInt32(truncatingIfNeeded: value)
        bytes += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)]
    }

    static func appendUInt16(_ bytes: inout [UInt8], _ value: Int) {
        let v = UInt16(truncatingIfNeeded: value)
        bytes += [UInt8(v & 0xFF), UInt8(v >> 8)]
    }

    /// Everything up to and including the 'movi' fourcc; sizes and rates are placeholders.
    static func headers(width: Int, height: Int) -> [UInt8] {
        var h: [UInt8] = []
        func fourCC(_ s: String) { h += Array(s.utf8) }
        func u32(_ v: Int) { appendUInt32(&h, v) }
        func u16(_ v: Int) { appendUInt16(&h, v) }

        fourCC("RIFF"); u32(0); fourCC("AVI ")
        fourCC("LIST"); u32(4 + 8 + 56 + 12 + 8 + 56 + 8 + 40); fourCC("hdrl")
        // avih
        fourCC("avih"); u32(56)
        u32(33_333)  // dwMicroSecPerFrame (patched)
        u32(0)  // dwMaxBytesPerSec (patched)
        u32(0)  // dwPaddingGranularity
        u32(0x10)  // dwFlags: AVIF_HASINDEX
        u32(0)  // dwTotalFrames (patched)
        u32(0)  // dwInitialFrames
        u32(1)  // dwStreams
        u32(0)  // dwSuggestedBufferSize (patched)
        u32(width); u32(height)
        u32(0); u32(0); u32(0); u32(0)  // dwReserved
        // strl
        fourCC("LIST"); u32(4 + 8 + 56 + 8 + 40); fourCC("strl")
        fourCC("strh"); u32(56)
        fourCC("vids"); fourCC("MJPG")
        u32(0)  // dwFlags
        u16(0); u16(0)  // wPriority, wLanguage
        u32(0)  // dwInitialFrames
        u32(1000)  // dwScale (patched)
        u32(30_000)  // dwRate (patched)
        u32(0)  // dwStart
        u32(0)  // dwLength (patched)
        u32(0)  // dwSuggestedBufferSize (patched)
        u32(Int(UInt32.max))  // dwQuality: -1 = default
        u32(0)  // dwSampleSize: variable
        u16(0); u16(0); u16(width); u16(height)  // rcFrame
        fourCC("strf"); u32(40)
        u32(40)  // biSize
        u32(width); u32(height)
        u16(1)  // biPlanes
        u16(24)  // biBitCount
        fourCC("MJPG")  // biCompression
        u32(width * height * 3)  // biSizeImage
        u32(0); u32(0); u32(0); u32(0)  // resolution, colours
        // JUNK up to headerSize so 'movi' has a fixed offset.
        let junk = headerSize - h.count - 8
        fourCC("JUNK"); u32(junk); h += [UInt8](repeating: 0, count: junk)
        fourCC("LIST"); u32(4); fourCC("movi")  // size patched
        return h
    }
}
