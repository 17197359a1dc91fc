// PNG encoding of RGB pixels (8-bit truecolour, no interlace) with zlib: each scanline gets
// the filter (None, Sub, Up, Average, Paeth) with the smallest sum of absolute values, the
// usual heuristic; the filtered rows are deflated in one zlib stream (level 6) and stored in
// one IDAT chunk. CRC-32 from zlib.

internal import CZlib

public enum PNGWriter {
    public static func encode(_ image: RGBImage) throws(NanoKVMError) -> [UInt8] {
        let width = image.width
        let height = image.height
        let stride = width * 3
        // Filtered scanlines: one filter byte + the row.
        var filtered = [UInt8](repeating: 0, count: (stride + 1) * height)
        image.pixels.withUnsafeBufferPointer { source in
            filtered.withUnsafeMutableBufferPointer { destination in
                guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
                var candidate = [UInt8](repeating: 0, count: stride)
                var best = [UInt8](repeating: 0, count: stride)
                candidate.withUnsafeMutableBufferPointer { cand in
                    best.withUnsafeMutableBufferPointer { bestRow in
                        guard let c = cand.baseAddress, let b = bestRow.baseAddress else { return }
                        for y in 0..<height {
                            let row = src + y * stride
                            let previous: UnsafePointer<UInt8>? = y > 0 ? src + (y - 1) * stride : nil
                            var bestFilter: UInt8 = 0
                            var bestScore = Int.max
                            for filter: UInt8 in 0...4 {
                                let score = apply(filter, row: row, previous: previous, count: stride, into: c)
                                if score < bestScore {
                                    bestScore = score
                                    bestFilter = filter
                                    b.update(from: c, count: stride)
                                }
                            }
                            let out = dst + y * (stride + 1)
                            out[0] = bestFilter
                            (out + 1).update(from: b, count: stride)
                        }
                    }
                }
            }
        }
        let compressed = try deflate(filtered)

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png.reserveCapacity(compressed.count + 64)
        var header: [UInt8] = []
        appendUInt32(&header, UInt32(width))
        appendUInt32(&header, UInt32(height))
        header += [8, 2, 0, 0, 0]  // 8 bits, truecolour, deflate, adaptive filtering, no interlace
        appendChunk(&png, "IHDR", header)
        appendChunk(&png, "IDAT", compressed)
        appendChunk(&png, "IEND", [])
        return png
    }

    /// Filters one row into `out` and returns the sum of the bytes as signed values (the
    /// heuristic's score).
    private static func apply(
        _ filter: UInt8, row: UnsafePointer<UInt8>, previous: UnsafePointer<UInt8>?, count: Int, into out: UnsafeMutablePointer<UInt8>
    ) -> Int {
        var score = 0
        for i in 0..<count {
            let x = row[i]
            let a: UInt8 = i >= 3 ? row[i - 3] : 0
            let b: UInt8 = previous?[i] ?? 0
            let c: UInt8 = (i >= 3 ? previous?[i - 3] : nil) ?? 0
            let value: UInt8
            switch filter {
            case 1: value = x &- a
            case 2: value = x &- b
            case 3: value = x &- UInt8((UInt16(a) + UInt16(b)) / 2)
            case 4: value = x &- paeth(a, b, c)
            default: value = x
            }
            out[i] = value
            score += value < 128 ? Int(value) : 256 - Int(value)
        }
        return score
    }

    private static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let p = Int(a) + Int(b) - Int(c)
        let pa = abs(p - Int(a))
        let pb = abs(p - Int(b))
        let pc = abs(p - Int(c))
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    static func deflate(_ data: [UInt8]) throws(NanoKVMError) -> [UInt8] {
        var capacity = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { destination in
            data.withUnsafeBufferPointer { source in
                compress2(destination.baseAddress, &capacity, source.baseAddress, uLong(source.count), 6)
            }
        }
        guard status == Z_OK else {
            throw NanoKVMError(.protocol, "PNG compression failed (zlib status \(status))")
        }
        out.removeSubrange(Int(capacity)...)
        return out
    }

    private static func appendUInt32(_ bytes: inout [UInt8], _ value: UInt32) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    private static func appendChunk(_ png: inout [UInt8], _ type: String, _ data: [UInt8]) {
        appendUInt32(&png, UInt32(data.count))
        let typeBytes = Array(type.utf8)
        var crc = crc32(0, typeBytes, uInt(typeBytes.count))
        crc = data.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        png += typeBytes
        png += data
        appendUInt32(&png, UInt32(truncatingIfNeeded: crc))
    }
}
