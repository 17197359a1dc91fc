// Linux console fonts (PSF1 and PSF2, gzip'd as Debian's console-setup-linux ships them in
// /usr/share/consolefonts) for the simulated machine's screens. Parsed here with zlib; a font
// that is missing or damaged falls back to the built-in 8×16 ASCII bitmap, so the simulator
// still works on a machine without the package (the screens just look plainer).

internal import CZlib
import Foundation
import Synchronization

struct PSFFont: Sendable {
    /// The file's base name (`Lat15-VGA16`), or `builtin`.
    var name: String
    var width: Int
    var height: Int
    var bytesPerRow: Int
    var glyphCount: Int
    /// Glyph bitmaps, `height * bytesPerRow` bytes each, most significant bit = leftmost pixel.
    var bitmaps: [UInt8]
    /// Unicode scalar → glyph index (from the font's table; identity for the first 256 without one).
    var unicode: [UInt32: Int]

    static let directory = "/usr/share/consolefonts"

    /// The glyph that draws `scalar`: the font's mapping, else `?`, else glyph 0.
    func glyph(for scalar: Unicode.Scalar) -> Int {
        if let index = unicode[scalar.value] { return index }
        return unicode[0x3F] ?? 0
    }

    /// Pixel row `row` of `glyph` as bits, bit `width - 1` = leftmost pixel.
    func rowBits(_ glyph: Int, row: Int) -> UInt32 {
        let start = (glyph * height + row) * bytesPerRow
        guard glyph >= 0, glyph < glyphCount, row >= 0, row < height, start + bytesPerRow <= bitmaps.count else { return 0 }
        var bits: UInt32 = 0
        for i in 0..<bytesPerRow { bits = bits << 8 | UInt32(bitmaps[start + i]) }
        return bits >> UInt32(bytesPerRow * 8 - width)
    }

    enum LoadError: Error { case unreadable, notGzip, notPSF, truncated }

    /// Parses a PSF1 or PSF2 file, gzip'd or not.
    static func parse(_ file: [UInt8], name: String) throws -> PSFFont {
        let bytes = file.starts(with: [0x1F, 0x8B]) ? try gunzip(file) : file
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        }
        if bytes.count >= 4, bytes[0] == 0x36, bytes[1] == 0x04 {
            let mode = bytes[2]
            let height = Int(bytes[3])
            let count = mode & 0x01 != 0 ? 512 : 256
            let tableStart = 4 + count * height
            guard height > 0, bytes.count >= tableStart else { throw LoadError.truncated }
            var unicode: [UInt32: Int] = [:]
            if mode & 0x06 != 0 {
                var offset = tableStart
                var glyph = 0
                var inSequence = false
                while offset + 1 < bytes.count, glyph < count {
                    let value = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8
                    offset += 2
                    switch value {
                    case 0xFFFF: glyph += 1; inSequence = false
                    case 0xFFFE: inSequence = true
                    default: if !inSequence, unicode[value] == nil { unicode[value] = glyph }
                    }
                }
            } else {
                for i in 0..<count { unicode[UInt32(i)] = i }
            }
            return PSFFont(
                name: name, width: 8, height: height, bytesPerRow: 1, glyphCount: count,
                bitmaps: Array(bytes[4..<tableStart]), unicode: unicode)
        }
        guard bytes.count >= 32, bytes[0] == 0x72, bytes[1] == 0xB5, bytes[2] == 0x4A, bytes[3] == 0x86 else {
            throw LoadError.notPSF
        }
        let headerSize = u32(8)
        let flags = u32(12)
        let count = u32(16)
        let charSize = u32(20)
        let height = u32(24)
        let width = u32(28)
        let bytesPerRow = (width + 7) / 8
        guard (1...32).contains(width), (1...64).contains(height), charSize == height * bytesPerRow, count > 0, count <= 65536
        else { throw LoadError.notPSF }
        let tableStart = headerSize + count * charSize
        guard bytes.count >= tableStart else { throw LoadError.truncated }
        var unicode: [UInt32: Int] = [:]
        if flags & 0x01 != 0 {
            var offset = tableStart
            var glyph = 0
            var inSequence = false
            while offset < bytes.count, glyph < count {
                let lead = bytes[offset]
                if lead == 0xFF { glyph += 1; inSequence = false; offset += 1; continue }
                if lead == 0xFE { inSequence = true; offset += 1; continue }
                let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
                guard offset + length <= bytes.count else { break }
                let scalar = String(decoding: bytes[offset..<offset + length], as: UTF8.self).unicodeScalars.first
                if !inSequence, let scalar, unicode[scalar.value] == nil { unicode[scalar.value] = glyph }
                offset += length
            }
        } else {
            for i in 0..<min(count, 256) { unicode[UInt32(i)] = i }
        }
        return PSFFont(
            name: name, width: width, height: height, bytesPerRow: bytesPerRow, glyphCount: count,
            bitmaps: Array(bytes[headerSize..<tableStart]), unicode: unicode)
    }

    /// Inflates a gzip stream (zlib's gzip wrapper: window bits 15 + 16).
    static func gunzip(_ input: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw LoadError.notGzip
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var input = input
        var status: Int32 = Z_OK
        input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = UInt32(buffer.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    output += buffer[0..<(buffer.count - Int(stream.avail_out))]
                }
            } while status == Z_OK && output.count < 16 << 20
        }
        guard status == Z_STREAM_END else { throw LoadError.notGzip }
        return output
    }

    /// The built-in 8×16 ASCII bitmap as a font.
    static let builtin: PSFFont = {
        var bitmaps = [UInt8](repeating: 0, count: 128 * BitmapFont.height)
        var unicode: [UInt32: Int] = [:]
        for code in BitmapFont.firstCharacter...BitmapFont.lastCharacter {
            for row in 0..<BitmapFont.height { bitmaps[Int(code) * BitmapFont.height + row] = BitmapFont.rowBits(code, row: row) }
            unicode[UInt32(code)] = Int(code)
        }
        return PSFFont(
            name: "builtin", width: BitmapFont.width, height: BitmapFont.height, bytesPerRow: 1, glyphCount: 128,
            bitmaps: bitmaps, unicode: unicode)
    }()

    private static let cache = Mutex<[String: PSFFont]>([:])

    /// `name` from /usr/share/consolefonts (`.psf.gz` or `.psf`), loaded once per process;
    /// nil when it is not installed or cannot be parsed.
    static func named(_ name: String) -> PSFFont? {
        if let font = cache.withLock({ $0[name] }) { return font }
        for suffix in [".psf.gz", ".psf"] {
            let path = "\(directory)/\(name)\(suffix)"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            guard let font = try? parse(Array(data), name: name) else { return nil }
            cache.withLock { $0[name] = font }
            return font
        }
        return nil
    }

    /// The first of `names` that is installed, else the built-in font.
    static func first(of names: [String]) -> PSFFont {
        for name in names { if let font = named(name) { return font } }
        return builtin
    }
}
