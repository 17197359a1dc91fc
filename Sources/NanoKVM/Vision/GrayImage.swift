// Grayscale images for the screen readers (OCR and needle matching): conversion from RGB,
// crops, inversion and resampling. One byte per pixel, row-major.

/// A grayscale image: `width * height` bytes, 0 = black.
public struct GrayImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// An image of `width`×`height` filled with `value` (empty sides give an empty image).
    public init(width: Int, height: Int, value: UInt8 = 0) {
        self.width = max(width, 0)
        self.height = max(height, 0)
        pixels = [UInt8](repeating: value, count: self.width * self.height)
    }

    /// Nil unless `pixels.count == width * height`.
    public init?(width: Int, height: Int, pixels: [UInt8]) {
        guard width >= 0, height >= 0, pixels.count == width * height else { return nil }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Luma (ITU-R BT.601 weights, integer arithmetic) of an RGB image.
    public init(_ image: RGBImage) {
        width = image.width
        height = image.height
        var out = [UInt8](repeating: 0, count: image.width * image.height)
        image.pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                for i in 0..<destination.count {
                    let o = i * 3
                    let value = (77 * Int(source[o]) + 150 * Int(source[o + 1]) + 29 * Int(source[o + 2]) + 128) >> 8
                    destination[i] = UInt8(min(value, 255))
                }
            }
        }
        pixels = out
    }

    /// The grayscale pixels of a frame (decodes it once).
    public init(frame: Frame) throws(NanoKVMError) { self.init(try frame.pixels()) }

    public subscript(x: Int, y: Int) -> UInt8 { pixels[y * width + x] }

    /// The rectangle clipped to the image (an empty image when nothing is left).
    public func crop(x: Int, y: Int, width w: Int, height h: Int) -> GrayImage {
        let x0 = min(max(x, 0), width)
        let y0 = min(max(y, 0), height)
        let x1 = min(max(x + w, x0), width)
        let y1 = min(max(y + h, y0), height)
        var out = GrayImage(width: x1 - x0, height: y1 - y0)
        guard out.width > 0, out.height > 0 else { return out }
        pixels.withUnsafeBufferPointer { source in
            out.pixels.withUnsafeMutableBufferPointer { destination in
                for row in 0..<out.height {
                    let from = (y0 + row) * width + x0
                    for column in 0..<out.width { destination[row * out.width + column] = source[from + column] }
                }
            }
        }
        return out
    }

    /// 255 - every pixel.
    public func inverted() -> GrayImage {
        var out = self
        out.pixels.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<buffer.count { buffer[i] = 255 &- buffer[i] }
        }
        return out
    }

    /// Scaled by an integer `factor` ≥ 1 with bilinear interpolation (pixel centres aligned), so
    /// that upscaled glyphs keep smooth edges, which Tesseract reads better than blocky ones.
    public func upscaled(by factor: Int) -> GrayImage {
        guard factor > 1, width > 0, height > 0 else { return self }
        let outWidth = width * factor
        let outHeight = height * factor
        var out = GrayImage(width: outWidth, height: outHeight)
        // Source coordinate of each output column, in 1/256 pixel, and its two neighbours.
        var x0 = [Int](repeating: 0, count: outWidth)
        var fx = [Int](repeating: 0, count: outWidth)
        for x in 0..<outWidth {
            let position = max(0, ((2 * x + 1) * 256) / (2 * factor) - 128)
            x0[x] = min(position >> 8, width - 1)
            fx[x] = position & 255
        }
        pixels.withUnsafeBufferPointer { source in
            out.pixels.withUnsafeMutableBufferPointer { destination in
                for y in 0..<outHeight {
                    let position = max(0, ((2 * y + 1) * 256) / (2 * factor) - 128)
                    let y0 = min(position >> 8, height - 1)
                    let y1 = min(y0 + 1, height - 1)
                    let fy = position & 255
                    let row0 = y0 * width
                    let row1 = y1 * width
                    let out = y * outWidth
                    for x in 0..<outWidth {
                        let xa = x0[x]
                        let xb = min(xa + 1, width - 1)
                        let top = Int(source[row0 + xa]) * (256 - fx[x]) + Int(source[row0 + xb]) * fx[x]
                        let bottom = Int(source[row1 + xa]) * (256 - fx[x]) + Int(source[row1 + xb]) * fx[x]
                        destination[out + x] = UInt8(min((top * (256 - fy) + bottom * fy + 32768) >> 16, 255))
                    }
                }
            }
        }
        return out
    }

    /// Shrunk by an integer `factor` by averaging `factor`×`factor` blocks, the first block at
    /// (`phaseX`, `phaseY`) (the columns and rows before it, and a partial block at the end, dropped).
    public func downscaled(by factor: Int, phaseX: Int = 0, phaseY: Int = 0) -> GrayImage {
        guard factor > 1 else { return self }
        let px = min(max(phaseX, 0), width), py = min(max(phaseY, 0), height)
        let w = (width - px) / factor, h = (height - py) / factor
        var out = GrayImage(width: w, height: h)
        guard w > 0, h > 0 else { return out }
        let area = factor * factor
        pixels.withUnsafeBufferPointer { source in
            out.pixels.withUnsafeMutableBufferPointer { destination in
                for y in 0..<h {
                    for x in 0..<w {
                        var sum = 0
                        for dy in 0..<factor {
                            let row = (py + y * factor + dy) * width + px + x * factor
                            for dx in 0..<factor { sum += Int(source[row + dx]) }
                        }
                        destination[y * w + x] = UInt8((sum + area / 2) / area)
                    }
                }
            }
        }
        return out
    }

    /// Halved in both directions by averaging 2×2 blocks (the coarse level of the needle search).
    public func halved() -> GrayImage { halved(x: true, y: true) }

    /// The image halved along `x`, `y` or both (box filter; an odd last row or column is
    /// dropped).
    public func halved(x halveX: Bool, y halveY: Bool) -> GrayImage {
        let w = halveX ? width / 2 : width
        let h = halveY ? height / 2 : height
        var out = GrayImage(width: w, height: h)
        guard w > 0, h > 0 else { return out }
        let dx = halveX ? 1 : 0, dy = halveY ? width : 0
        let stepX = halveX ? 2 : 1
        pixels.withUnsafeBufferPointer { source in
            out.pixels.withUnsafeMutableBufferPointer { destination in
                for y in 0..<h {
                    let a = (halveY ? 2 * y : y) * width
                    let b = a + dy
                    for x in 0..<w {
                        let i = stepX * x
                        let sum = Int(source[a + i]) + Int(source[a + i + dx]) + Int(source[b + i]) + Int(source[b + i + dx])
                        destination[y * w + x] = UInt8((sum + 2) >> 2)
                    }
                }
            }
        }
        return out
    }

    /// The most common pixel value (the background of a text region), by histogram.
    public func dominantValue() -> UInt8 {
        var histogram = [Int](repeating: 0, count: 256)
        for value in pixels { histogram[Int(value)] += 1 }
        var best = 0
        for value in 1..<256 where histogram[value] > histogram[best] { best = value }
        return UInt8(best)
    }
}
