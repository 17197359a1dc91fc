// Preprocessing for OCR, which matters more than the engine: text-line bands and segments
// found from ink per row/column, each segment made dark-on-light (Tesseract 4+ is trained on
// that; light-on-dark consoles and BIOS screens are inverted here), contrast-stretched and
// upscaled until its x-height is well above the ~10 px below which Tesseract reads poorly
// (an 8×16 console font has an x-height of about 8 px at 1:1).

/// A rectangle of pixels.
public struct PixelRect: Sendable, Hashable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
    public var maxX: Int { x + width }
    public var maxY: Int { y + height }
    public func union(_ other: PixelRect) -> PixelRect {
        let x0 = min(x, other.x), y0 = min(y, other.y)
        return PixelRect(x: x0, y: y0, width: max(maxX, other.maxX) - x0, height: max(maxY, other.maxY) - y0)
    }
}

enum TextLayout {
    /// A pixel is ink when it differs from its row's background by more than this (well above
    /// JPEG noise, below the contrast of any readable text).
    static let inkContrast = 48
    /// Blank rows that still join two bands (gaps inside a line: between an accent and a letter).
    static let joinGap = 1
    /// Rows of margin kept above and below a band (Tesseract wants some white around a line).
    static let bandMargin = 3

    /// Rows of `image` with ink, grouped into bands (text lines), in image rows, with margins.
    static func bands(_ image: GrayImage) -> [PixelRect] { bandsWithCores(image).map(\.band) }

    /// Bands with margins, and their cores (the ink rows only: what identifies a line from one
    /// frame to the next, since a margin depends on the neighbours).
    static func bandsWithCores(_ image: GrayImage) -> [(band: PixelRect, core: PixelRect)] {
        let w = image.width, h = image.height
        guard w > 0, h > 0 else { return [] }
        var ink = [Int](repeating: 0, count: h)
        var histogram = [Int](repeating: 0, count: 256)
        image.pixels.withUnsafeBufferPointer { p in
            for y in 0..<h {
                for i in 0..<256 { histogram[i] = 0 }
                let row = y * w
                for x in 0..<w { histogram[Int(p[row + x])] += 1 }
                var background = 0
                for v in 1..<256 where histogram[v] > histogram[background] { background = v }
                var count = 0
                for x in 0..<w where abs(Int(p[row + x]) - background) > inkContrast { count += 1 }
                ink[y] = count
            }
        }
        // A row is text when it has a few ink pixels but is not a full-width rule (box lines).
        let minimum = 3
        func isText(_ y: Int) -> Bool { ink[y] >= minimum && ink[y] < w * 9 / 10 }
        var bands: [PixelRect] = []
        var y = 0
        while y < h {
            guard isText(y) else { y += 1; continue }
            var end = y + 1
            var blank = 0
            var probe = end
            while probe < h {
                if isText(probe) {
                    blank = 0
                    end = probe + 1
                } else {
                    blank += 1
                    if blank > joinGap { break }
                }
                probe += 1
            }
            // Bands of one or two rows are rules or noise, not text.
            if end - y >= 4 { bands.append(PixelRect(x: 0, y: y, width: w, height: end - y)) }
            y = end
        }
        // Margins above and below, never reaching into the neighbouring lines (their ascenders
        // and descenders would read as stray characters).
        var out: [(band: PixelRect, core: PixelRect)] = []
        for (index, band) in bands.enumerated() {
            let above = index > 0 ? (band.y - bands[index - 1].maxY) / 2 : bandMargin
            let below = index + 1 < bands.count ? (bands[index + 1].y - band.maxY + 1) / 2 : bandMargin
            let top = max(band.y - min(bandMargin, above), 0)
            let bottom = min(band.maxY + min(bandMargin, below), h)
            out.append((PixelRect(x: 0, y: top, width: w, height: bottom - top), band))
        }
        return out
    }

    /// The parts of `band` with ink, split at blank runs wider than twice the band's height
    /// (columns of a menu, a label and its value far apart), in image pixels.
    static func segments(_ image: GrayImage, band: PixelRect) -> [PixelRect] {
        let strip = image.crop(x: band.x, y: band.y, width: band.width, height: band.height)
        let background = Int(strip.dominantValue())
        var columnInk = [Bool](repeating: false, count: strip.width)
        strip.pixels.withUnsafeBufferPointer { p in
            for x in 0..<strip.width {
                for y in 0..<strip.height where abs(Int(p[y * strip.width + x]) - background) > inkContrast {
                    columnInk[x] = true
                    break
                }
            }
        }
        let split = max(band.height * 2, 16)
        var segments: [PixelRect] = []
        var start: Int?
        var lastInk = -1
        for x in 0..<strip.width where columnInk[x] {
            if let s = start, x - lastInk > split {
                segments.append(PixelRect(x: s, y: band.y, width: lastInk + 1 - s, height: band.height))
                start = x
            } else if start == nil {
                start = x
            }
            lastInk = x
        }
        if let s = start { segments.append(PixelRect(x: s, y: band.y, width: lastInk + 1 - s, height: band.height)) }
        // A margin of half a line on both sides, inside the band.
        let pad = band.height / 2
        return segments.map { segment in
            let x0 = max(segment.x - pad, band.x)
            let x1 = min(segment.maxX + pad, band.maxX)
            return PixelRect(x: x0, y: segment.y, width: x1 - x0, height: segment.height)
        }
    }

    /// The integer upscale factor for text of line height `lineHeight` px: Tesseract reads best
    /// at a line height of about 40–50 px (x-height 20+).
    /// (Measured on the 8×16 console font: ink 10–14 px high reads best at ×3 with strokes
    /// thickened by one pixel; ×2 and ×4 confuse o/c, v/y and m.)
    static func scaleFactor(lineHeight: Int) -> Int {
        guard lineHeight > 0 else { return 1 }
        return min(max(Int((36.0 / Double(lineHeight)).rounded()), 1), 4)
    }

    /// Dark strokes thickened by `radius` px (a minimum filter, rows then columns): 1-px console
    /// strokes, even upscaled, are thinner than anything Tesseract was trained on.
    static func thickened(_ image: GrayImage, radius: Int) -> GrayImage {
        guard radius > 0, image.width > 0, image.height > 0 else { return image }
        let w = image.width, h = image.height
        var rows = image
        image.pixels.withUnsafeBufferPointer { p in
            rows.pixels.withUnsafeMutableBufferPointer { out in
                for y in 0..<h {
                    let row = y * w
                    for x in 0..<w {
                        var m = p[row + x]
                        for dx in max(x - radius, 0)...min(x + radius, w - 1) where p[row + dx] < m { m = p[row + dx] }
                        out[row + x] = m
                    }
                }
            }
        }
        var out = rows
        rows.pixels.withUnsafeBufferPointer { p in
            out.pixels.withUnsafeMutableBufferPointer { o in
                for y in 0..<h {
                    for x in 0..<w {
                        var m = p[y * w + x]
                        for dy in max(y - radius, 0)...min(y + radius, h - 1) where p[dy * w + x] < m { m = p[dy * w + x] }
                        o[y * w + x] = m
                    }
                }
            }
        }
        return out
    }

    /// Erases tiny ink specks that sit alone inside a glyph's enclosed hole: the dot of a dotted
    /// zero (console and BIOS fonts), which Tesseract's English model reads as 6 or 8.
    /// `image` is dark on light; works on a binarisation at mid-grey.
    static func removeDotsInCounters(_ image: inout GrayImage) {
        let w = image.width, h = image.height
        guard w > 2, h > 2 else { return }
        let ink = image.pixels.map { $0 < 128 }
        // Background reachable from the border (4-connected): everything else light is a hole.
        var outside = [Bool](repeating: false, count: w * h)
        var stack: [Int] = []
        for x in 0..<w { stack.append(x); stack.append((h - 1) * w + x) }
        for y in 0..<h { stack.append(y * w); stack.append(y * w + w - 1) }
        while let i = stack.popLast() {
            guard !ink[i], !outside[i] else { continue }
            outside[i] = true
            let x = i % w, y = i / w
            if x > 0 { stack.append(i - 1) }
            if x < w - 1 { stack.append(i + 1) }
            if y > 0 { stack.append(i - w) }
            if y < h - 1 { stack.append(i + w) }
        }
        // Ink components (8-connected) of at most `maximum` pixels whose neighbours are all holes.
        let maximum = max(2, h / 6) * max(2, h / 6)
        var seen = [Bool](repeating: false, count: w * h)
        for start in 0..<(w * h) where ink[start] && !seen[start] {
            var component: [Int] = []
            var touchesOutside = false
            stack = [start]
            seen[start] = true
            while let i = stack.popLast() {
                component.append(i)
                let x = i % w, y = i / w
                for dy in -1...1 {
                    for dx in -1...1 where dx != 0 || dy != 0 {
                        let nx = x + dx, ny = y + dy
                        guard nx >= 0, ny >= 0, nx < w, ny < h else { touchesOutside = true; continue }
                        let n = ny * w + nx
                        if ink[n] {
                            if !seen[n] { seen[n] = true; stack.append(n) }
                        } else if outside[n] {
                            touchesOutside = true
                        }
                    }
                }
            }
            guard !touchesOutside, component.count <= maximum else { continue }
            for i in component { image.pixels[i] = 255 }
        }
    }

    /// A region prepared for Tesseract: dark on light, contrast stretched, upscaled by `scale`,
    /// with a white border of `border` px (in the upscaled image).
    static func prepare(_ region: GrayImage, scale: Int, border: Int) -> GrayImage {
        var image = region
        let background = Int(image.dominantValue())
        if background < 128 { image = image.inverted() }
        // Stretch: the background to white, the darkest ink to black.
        let paper = image.dominantValue()
        var darkest: UInt8 = 255
        for value in image.pixels where value < darkest { darkest = value }
        if Int(paper) - Int(darkest) > 16 {
            let low = Int(darkest), range = Int(paper) - Int(darkest)
            image.pixels.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count {
                    let v = (Int(p[i]) - low) * 255 / range
                    // The last quarter towards the paper is JPEG noise and ringing: white.
                    p[i] = v >= 192 ? 255 : UInt8(min(max(v, 0), 255))
                }
            }
        }
        removeDotsInCounters(&image)
        // Upscaled smoothly, then binarised (grey JPEG fringes made Tesseract see v as y and
        // o as c), then thickened: measured on the simulator's console frames, this order
        // reads best (see VisionOCRTests).
        var scaled = image.upscaled(by: scale)
        scaled.pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = p[i] < 140 ? 0 : 255 }
        }
        scaled = thickened(scaled, radius: scale / 3)
        guard border > 0 else { return scaled }
        var out = GrayImage(width: scaled.width + 2 * border, height: scaled.height + 2 * border, value: 255)
        scaled.pixels.withUnsafeBufferPointer { source in
            out.pixels.withUnsafeMutableBufferPointer { destination in
                for y in 0..<scaled.height {
                    let to = (y + border) * out.width + border
                    for x in 0..<scaled.width { destination[to + x] = source[y * scaled.width + x] }
                }
            }
        }
        return out
    }
}
