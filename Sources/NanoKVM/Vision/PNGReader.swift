// PNG decoding for needles (openQA stores them as PNG): 8- and 16-bit grey, grey+alpha, RGB,
// RGBA and palette images, no interlace (openQA writes none). The IDAT chunks are inflated in
// one go with zlib (the output size is known from the header) and unfiltered row by row.
// Alpha is dropped (composited on nothing: needles are screenshots).

internal import CZlib

#if canImport(Glibc)
import Glibc
#endif

public enum PNGReader {
    /// Decodes `bytes`; raises `usage` naming `name` (a file) when they are not a PNG this
    /// reader handles.
    public static func decode(_ bytes: [UInt8], name: String = "PNG") throws(NanoKVMError) -> RGBImage {
        func bad(_ why: String) -> NanoKVMError { NanoKVMError(.usage, "\(name): not a readable PNG (\(why))") }
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard bytes.count > 8, Array(bytes[0..<8]) == signature else { throw bad("no PNG signature") }
        var offset = 8
        var width = 0, height = 0, depth = 0, colour = 0
        var palette: [UInt8] = []
        var data: [UInt8] = []
        var sawHeader = false
        func uint32(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        while offset + 12 <= bytes.count {
            let length = uint32(offset)
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let start = offset + 8
            guard length >= 0, start + length + 4 <= bytes.count else { throw bad("truncated \(type) chunk") }
            let body = bytes[start..<(start + length)]
            switch type {
            case "IHDR":
                guard length == 13 else { throw bad("bad IHDR") }
                width = uint32(start)
                height = uint32(start + 4)
                depth = Int(bytes[start + 8])
                colour = Int(bytes[start + 9])
                guard bytes[start + 12] == 0 else { throw bad("interlaced PNGs are not supported") }
                sawHeader = true
            case "PLTE": palette = Array(body)
            case "IDAT": data += body
            case "IEND": offset = bytes.count
            default: break
            }
            offset = start + length + 4
        }
        guard sawHeader else { throw bad("no IHDR") }
        guard width > 0, height > 0, width <= JPEGCodec.maximumSide, height <= JPEGCodec.maximumSide else {
            throw bad("size \(width)x\(height) out of range")
        }
        let channels: Int
        switch colour {
        case 0: channels = 1
        case 2: channels = 3
        case 3: channels = 1
        case 4: channels = 2
        case 6: channels = 4
        default: throw bad("colour type \(colour)")
        }
        guard depth == 8 || depth == 16, !(colour == 3 && depth != 8) else { throw bad("bit depth \(depth) is not supported") }
        let bytesPerPixel = channels * depth / 8
        let stride = width * bytesPerPixel
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        var rawLength = uLong(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { out in
            data.withUnsafeBufferPointer { input in uncompress(out.baseAddress, &rawLength, input.baseAddress, uLong(input.count)) }
        }
        guard status == Z_OK, Int(rawLength) == raw.count else { throw bad("corrupt image data (zlib status \(status))") }
        // Unfilter in place.
        var previous = [UInt8](repeating: 0, count: stride)
        var row = [UInt8](repeating: 0, count: stride)
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let base = y * (stride + 1)
            let filter = raw[base]
            for i in 0..<stride {
                let x = raw[base + 1 + i]
                let a: UInt8 = i >= bytesPerPixel ? row[i - bytesPerPixel] : 0
                let b = previous[i]
                let c: UInt8 = i >= bytesPerPixel ? previous[i - bytesPerPixel] : 0
                switch filter {
                case 0: row[i] = x
                case 1: row[i] = x &+ a
                case 2: row[i] = x &+ b
                case 3: row[i] = x &+ UInt8((Int(a) + Int(b)) / 2)
                case 4:
                    let p = Int(a) + Int(b) - Int(c)
                    let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
                    row[i] = x &+ (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)
                default: throw bad("filter type \(filter)")
                }
            }
            let step = depth / 8
            for x in 0..<width {
                let p = x * bytesPerPixel
                let o = (y * width + x) * 3
                switch colour {
                case 0, 4:
                    rgb[o] = row[p]; rgb[o + 1] = row[p]; rgb[o + 2] = row[p]
                case 3:
                    let index = Int(row[p]) * 3
                    guard index + 2 < palette.count else { throw bad("palette index out of range") }
                    rgb[o] = palette[index]; rgb[o + 1] = palette[index + 1]; rgb[o + 2] = palette[index + 2]
                default:
                    rgb[o] = row[p]; rgb[o + 1] = row[p + step]; rgb[o + 2] = row[p + 2 * step]
                }
            }
            swap(&previous, &row)
        }
        guard let image = RGBImage(width: width, height: height, pixels: rgb) else { throw bad("empty image") }
        return image
    }
}

/// Reading whole files (POSIX, no Foundation).
enum FileInput {
    /// The bytes of `path`; raises `usage` naming it when it cannot be read or exceeds `limit`.
    static func readFile(_ path: String, limit: Int = 64 << 20) throws(NanoKVMError) -> [UInt8] {
        guard !path.isEmpty, !path.utf8.contains(0) else { throw NanoKVMError(.usage, "invalid file name '\(path)'") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileOutput.failure("cannot read", path) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw FileOutput.failure("cannot read", path) }
            if count == 0 { break }
            out += chunk[0..<count]
            guard out.count <= limit else { throw NanoKVMError(.usage, "\(path) is larger than \(limit >> 20) MB") }
        }
        return out
    }

    /// Whether `path` is a directory.
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The files under `directory` (recursively, sorted, hidden entries skipped).
    static func files(under directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasPrefix(".") { continue }
            names.append(name)
        }
        var out: [String] = []
        for name in names.sorted() {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            if isDirectory(path) { out += files(under: path) } else { out.append(path) }
        }
        return out
    }
}
