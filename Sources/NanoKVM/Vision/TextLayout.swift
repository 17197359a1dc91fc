// Preprocessing for OCR, which matters more than the engine. `TextPage` finds where the text is
// and how it is drawn:
//  - a background map: every pixel row's running median over a window wider than any glyph
//    stroke, so thin strokes drop out and what is left is the colour the text sits on — which
//    changes along a row on BIOS and boot-loader screens (a highlighted tab or menu entry, a
//    title bar, the black border around a centred 80×25 text mode);
//  - ink: pixels that differ from the background under them, less vertical rules (box sides,
//    column dividers: ink runs much taller than a text line), which are erased;
//  - bands (text lines) from the rows with ink, and in each band segments: first where the
//    background changes, then at wide blank gaps (a label and its value far apart).
// Each segment is then made dark on light on its own (Tesseract 4+ is trained on that; light on
// dark text is inverted), stretched from its own background to its own ink, and upscaled until
// its x-height is well above the ~10 px below which Tesseract reads poorly (an 8×16 console
// font has an x-height of about 8 px at 1:1).

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

/// Part of a text line on one background.
struct TextSegment: Sendable, Equatable {
    /// The band's rows (with margins) and the segment's columns (with padding), in image pixels.
    var rect: PixelRect
    /// The background level under the text.
    var background: Int
    /// Light text on a dark background (inverted when prepared).
    var lightText: Bool
    /// How far the ink is from the background (a high percentile): that distance becomes black.
    var contrast: Int
    /// The first column with ink (in image pixels).
    var inkStart: Int
    /// The background of each of the rect's columns (a blurred edge of the neighbouring
    /// background can belong to the segment's columns).
    var columnBackground: [UInt8]
}

/// One text line: its rows and its segments, left to right.
struct TextBand: Sendable, Equatable {
    /// The full width of the image; the ink rows and a margin above and below.
    var band: PixelRect
    /// The ink rows only: what identifies a line from one frame to the next (a margin depends
    /// on the neighbours).
    var core: PixelRect
    /// The rows of the core with a tenth of its densest row's ink or more: the text's height
    /// for choosing the scale of an area's single read, which a mouse pointer touching the
    /// line leaves alone. (Whole screens use the median core height of all lines, which the
    /// pointer cannot move.)
    var textHeight: Int
    /// Those rows (image rows).
    var textRows: Range<Int>
    var segments: [TextSegment]
}

/// Where the text of a grayscale image is, and how each part of it is drawn.
struct TextPage: Sendable {
    let image: GrayImage
    /// Per pixel: the background level under it.
    let background: [UInt8]
    /// Per pixel: part of a vertical rule (erased before reading).
    let rule: [Bool]
    let bands: [TextBand]

    /// A pixel is ink when it differs from the background under it by more than this (well above
    /// JPEG noise, below the contrast of any readable text).
    static let inkContrast = 48
    /// Backgrounds closer than this are the same (JPEG noise, a dark blue next to black).
    static let backgroundTolerance = 24
    /// Half the window of the background's running median: wider than the widest run of ink
    /// along a glyph row (the bar of a T, an underscore: 8 px at 1:1, 16 px doubled).
    static let backgroundRadius = 16
    /// How far from a step of the background JPEG blur reaches (pixels).
    static let edgeReach = 8
    /// Blank rows that still join two bands (gaps inside a line: between an accent and a letter).
    static let joinGap = 1
    /// Rows of margin kept above and below a band (Tesseract wants some white around a line).
    static let bandMargin = 3

    init(_ image: GrayImage) {
        self.image = image
        let w = image.width, h = image.height
        guard w > 0, h > 0 else {
            background = []
            rule = []
            bands = []
            return
        }
        let background = Self.rowMedians(image, radius: Self.backgroundRadius)
        // Where the background steps from one level to another (the end of a highlight), the
        // JPEG's blur and ringing make pixels differ from both: not ink (though they count for
        // rules: a box side next to a highlight is still one run).
        var marked = [Bool](repeating: false, count: w * h)
        var ink = [Bool](repeating: false, count: w * h)
        let reach = Self.edgeReach
        image.pixels.withUnsafeBufferPointer { p in
            background.withUnsafeBufferPointer { b in
                ink.withUnsafeMutableBufferPointer { out in
                    marked.withUnsafeMutableBufferPointer { marked in
                        for y in 0..<h {
                            let row = y * w
                            for x in 0..<w where abs(Int(p[row + x]) - Int(b[row + x])) > Self.inkContrast {
                                marked[row + x] = true
                                let left = Int(b[row + max(x - reach, 0)]), right = Int(b[row + min(x + reach, w - 1)])
                                out[row + x] = abs(left - right) <= Self.backgroundTolerance
                            }
                        }
                    }
                }
            }
        }
        // Rules are ink runs taller than two lines of the page's text; the text height comes
        // from a first pass that only drops the obvious ones (taller than any console font).
        let firstRules = Self.verticalRuns(marked, width: w, height: h, longerThan: 64)
        let firstBands = Self.findBands(Self.rowInk(ink, except: firstRules, width: w, height: h), height: h)
        let cores = firstBands.map(\.height).sorted()
        let typical = cores.isEmpty ? 16 : cores[cores.count / 2]
        let rule = Self.verticalRuns(marked, width: w, height: h, longerThan: max(2 * typical + 2, 20))
        ink.withUnsafeMutableBufferPointer { ink in
            rule.withUnsafeBufferPointer { rule in
                for i in 0..<ink.count where rule[i] { ink[i] = false }
            }
        }
        let rowInk = Self.rowInk(ink, except: nil, width: w, height: h)
        let cores2 = Self.findBands(rowInk, height: h)
        var bands: [TextBand] = []
        for (index, core) in cores2.enumerated() {
            // Margins above and below, never reaching into the neighbouring lines (their
            // ascenders and descenders would read as stray characters).
            let above = index > 0 ? (core.y - cores2[index - 1].maxY) / 2 : Self.bandMargin
            let below = index + 1 < cores2.count ? (cores2[index + 1].y - core.maxY + 1) / 2 : Self.bandMargin
            let top = max(core.y - min(Self.bandMargin, above), 0)
            let bottom = min(core.maxY + min(Self.bandMargin, below), h)
            let band = PixelRect(x: 0, y: top, width: w, height: bottom - top)
            let segments = Self.segments(image, background: background, ink: ink, band: band, core: core)
            guard !segments.isEmpty else { continue }
            let peak = rowInk[core.y..<core.maxY].max() ?? 0
            let dense = (core.y..<core.maxY).filter { rowInk[$0] >= max(3, peak / 10) }
            let textRows = (dense.first ?? core.y)..<((dense.last ?? core.maxY - 1) + 1)
            bands.append(TextBand(band: band, core: core, textHeight: max(dense.count, 1), textRows: textRows, segments: segments))
        }
        self.background = background
        self.rule = rule
        self.bands = bands
    }

    /// Each row's running median over `2 * radius + 1` pixels (the row's ends repeated), by a
    /// sliding histogram whose median moves by the few levels it changes per step.
    static func rowMedians(_ image: GrayImage, radius: Int) -> [UInt8] {
        let w = image.width, h = image.height
        var out = [UInt8](repeating: 0, count: w * h)
        guard w > 0, h > 0 else { return out }
        let rank = radius  // 0-based rank of the median in a window of 2r+1
        var histogram = [Int](repeating: 0, count: 256)
        image.pixels.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                histogram.withUnsafeMutableBufferPointer { hist in
                    for y in 0..<h {
                        let row = y * w
                        for i in 0..<256 { hist[i] = 0 }
                        for d in -radius...radius { hist[Int(p[row + min(max(d, 0), w - 1)])] += 1 }
                        var median = 0, below = 0
                        while below + hist[median] <= rank {
                            below += hist[median]
                            median += 1
                        }
                        o[row] = UInt8(median)
                        guard w > 1 else { continue }
                        for x in 1..<w {
                            let removed = Int(p[row + max(x - radius - 1, 0)])
                            let added = Int(p[row + min(x + radius, w - 1)])
                            hist[removed] -= 1
                            if removed < median { below -= 1 }
                            hist[added] += 1
                            if added < median { below += 1 }
                            while below > rank {
                                median -= 1
                                below -= hist[median]
                            }
                            while below + hist[median] <= rank {
                                below += hist[median]
                                median += 1
                            }
                            o[row + x] = UInt8(median)
                        }
                    }
                }
            }
        }
        return out
    }

    /// The pixels of vertical ink runs longer than `length` rows.
    static func verticalRuns(_ ink: [Bool], width w: Int, height h: Int, longerThan length: Int) -> [Bool] {
        var marked = [Bool](repeating: false, count: w * h)
        var start = [Int](repeating: -1, count: w)
        ink.withUnsafeBufferPointer { ink in
            marked.withUnsafeMutableBufferPointer { marked in
                start.withUnsafeMutableBufferPointer { start in
                    func close(_ x: Int, at end: Int) {
                        if end - start[x] > length { for y in start[x]..<end { marked[y * w + x] = true } }
                        start[x] = -1
                    }
                    for y in 0..<h {
                        let row = y * w
                        for x in 0..<w {
                            if ink[row + x] {
                                if start[x] < 0 { start[x] = y }
                            } else if start[x] >= 0 {
                                close(x, at: y)
                            }
                        }
                    }
                    for x in 0..<w where start[x] >= 0 { close(x, at: h) }
                }
            }
        }
        return marked
    }

    /// Ink pixels per row (those of `except` left out).
    static func rowInk(_ ink: [Bool], except: [Bool]?, width w: Int, height h: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: h)
        ink.withUnsafeBufferPointer { ink in
            for y in 0..<h {
                var count = 0
                let row = y * w
                if let except {
                    except.withUnsafeBufferPointer { except in
                        for x in 0..<w where ink[row + x] && !except[row + x] { count += 1 }
                    }
                } else {
                    for x in 0..<w where ink[row + x] { count += 1 }
                }
                counts[y] = count
            }
        }
        return counts
    }

    /// Runs of rows with a few ink pixels (gaps of up to `joinGap` rows joined), full width.
    static func findBands(_ rowInk: [Int], height h: Int) -> [PixelRect] {
        let minimum = 3
        var bands: [PixelRect] = []
        var y = 0
        while y < h {
            guard rowInk[y] >= minimum else {
                y += 1
                continue
            }
            var end = y + 1
            var blank = 0
            var probe = end
            while probe < h {
                if rowInk[probe] >= minimum {
                    blank = 0
                    end = probe + 1
                } else {
                    blank += 1
                    if blank > joinGap { break }
                }
                probe += 1
            }
            // Bands of fewer than four rows are rules or noise, not text.
            if end - y >= 4 { bands.append(PixelRect(x: 0, y: y, width: 0, height: end - y)) }
            y = end
        }
        return bands
    }

    /// The segments of one band: runs of columns on one background, each split at blank gaps
    /// wider than twice the band's height, padded by half a line (within its background).
    static func segments(_ image: GrayImage, background: [UInt8], ink: [Bool], band: PixelRect, core: PixelRect) -> [TextSegment] {
        let w = image.width, h = image.height
        // Each column's background: from the rows just above and below the ink (still the
        // line's own cells, and free of ink) when they agree; else (the line sits where two
        // backgrounds meet, or at the image's edge) the median of five rows across the ink,
        // where dense text (m, w, bold fonts) can outweigh the background in a row's median.
        var columnLevel = [Int](repeating: 0, count: w)
        let rows = (0..<5).map { (core.y + (core.height - 1) * $0 / 4) * w }
        let above = core.y > 0 ? (core.y - 1) * w : nil
        let below = core.maxY < h ? core.maxY * w : nil
        var values = [Int](repeating: 0, count: 5)
        for x in 0..<w {
            if let above, let below, abs(Int(background[above + x]) - Int(background[below + x])) <= backgroundTolerance {
                columnLevel[x] = (Int(background[above + x]) + Int(background[below + x])) / 2
                continue
            }
            for k in 0..<5 { values[k] = Int(background[rows[k] + x]) }
            values.sort()
            columnLevel[x] = values[2]
        }
        // Runs of one level; runs narrower than half a line are a blurred edge between two
        // backgrounds and join the neighbour of the closer level.
        var runs: [(start: Int, end: Int, level: Int)] = []
        var start = 0
        for x in 1...w where x == w || abs(columnLevel[x] - columnLevel[start]) > backgroundTolerance {
            runs.append((start, x, columnLevel[start]))
            start = x
        }
        let narrow = max(core.height / 2, 4)
        var merged: [(start: Int, end: Int, level: Int)] = []
        for run in runs {
            if let last = merged.last, run.end - run.start < narrow || abs(last.level - run.level) <= backgroundTolerance {
                merged[merged.count - 1].end = run.end
                if last.end - last.start < narrow && run.end - run.start >= narrow { merged[merged.count - 1].level = run.level }
            } else if let last = merged.last, last.end - last.start < narrow {
                merged[merged.count - 1] = (last.start, run.end, run.level)
            } else {
                merged.append(run)
            }
        }
        var out: [TextSegment] = []
        let split = max(band.height * 2, 16)
        let pad = band.height / 2
        for run in merged {
            // The run's level: the median of its columns' (edges included, they are few).
            var levels = Array(columnLevel[run.start..<run.end])
            levels.sort()
            let level = levels[levels.count / 2]
            var pieces: [(start: Int, end: Int)] = []
            var pieceStart: Int?
            var lastInk = -1
            for x in run.start..<run.end {
                var hasInk = false
                for y in core.y..<core.maxY where ink[y * w + x] {
                    hasInk = true
                    break
                }
                guard hasInk else { continue }
                if let s = pieceStart, x - lastInk > split {
                    pieces.append((s, lastInk + 1))
                    pieceStart = x
                } else if pieceStart == nil {
                    pieceStart = x
                }
                lastInk = x
            }
            if let s = pieceStart { pieces.append((s, lastInk + 1)) }
            for piece in pieces {
                let x0 = max(piece.start - pad, run.start)
                let x1 = min(piece.end + pad, run.end)
                let rect = PixelRect(x: x0, y: band.y, width: x1 - x0, height: band.height)
                guard let (light, contrast) = polarity(image, ink: ink, level: level, columns: piece.start..<piece.end, rows: core.y..<core.maxY)
                else { continue }
                let columns = columnLevel[x0..<x1].map { UInt8(min(max($0, 0), 255)) }
                out.append(
                    TextSegment(rect: rect, background: level, lightText: light, contrast: contrast, inkStart: piece.start, columnBackground: columns))
            }
        }
        return out
    }

    /// Whether the ink in `columns`×`rows` is lighter than `level`, and how far from it (the
    /// 95th percentile); nil without enough ink (specks).
    static func polarity(_ image: GrayImage, ink: [Bool], level: Int, columns: Range<Int>, rows: Range<Int>) -> (Bool, Int)? {
        let w = image.width
        var lighter = [Int](repeating: 0, count: 256)
        var darker = [Int](repeating: 0, count: 256)
        var light = 0, dark = 0
        for y in rows {
            for x in columns where ink[y * w + x] {
                let d = Int(image.pixels[y * w + x]) - level
                if d > 0 {
                    lighter[d] += 1
                    light += 1
                } else {
                    darker[-d] += 1
                    dark += 1
                }
            }
        }
        guard light + dark >= 3 else { return nil }
        let isLight = light >= dark
        let histogram = isLight ? lighter : darker
        let total = isLight ? light : dark
        var seen = 0
        var contrast = 255
        for value in stride(from: 255, through: 0, by: -1) {
            seen += histogram[value]
            if seen * 20 >= total {
                contrast = value
                break
            }
        }
        return (isLight, max(contrast, inkContrast))
    }

    /// `segment` dark on light: stretched from its background (white) to its ink (black), the
    /// faintest quarter (JPEG noise and ringing) white; rules and other backgrounds white:
    /// columns on another background, and in the margins pixels on another background (not
    /// within the ink rows, where the bar of a T can outweigh a row's median).
    func normalized(_ segment: TextSegment, of band: TextBand) -> GrayImage {
        var out = normalized(segment, core: band.core)
        let allowance = max(band.textHeight * 3 / 5, 2)
        TextPreparation.removeStrays(&out, rows: (band.textRows.lowerBound - segment.rect.y - allowance)..<(band.textRows.upperBound - segment.rect.y + allowance))
        return out
    }

    func normalized(_ segment: TextSegment, core: PixelRect) -> GrayImage {
        let r = segment.rect
        var out = GrayImage(width: r.width, height: r.height, value: 255)
        let w = image.width
        let level = segment.background
        let contrast = max(segment.contrast, 1)
        image.pixels.withUnsafeBufferPointer { p in
            background.withUnsafeBufferPointer { b in
                out.pixels.withUnsafeMutableBufferPointer { o in
                    for row in 0..<r.height {
                        let y = r.y + row
                        let inCore = y >= core.y && y < core.maxY
                        for column in 0..<r.width {
                            let i = y * w + r.x + column
                            guard !rule[i], abs(Int(segment.columnBackground[column]) - level) <= Self.backgroundTolerance else { continue }
                            let strength = segment.lightText ? Int(p[i]) - level : level - Int(p[i])
                            guard strength > 0 else { continue }
                            if !inCore && abs(Int(b[i]) - level) > Self.backgroundTolerance { continue }
                            let v = 255 - min(strength * 255 / contrast, 255)
                            if v < 192 { o[row * r.width + column] = UInt8(v) }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The whole image dark on light: every segment of `bands` normalised, white elsewhere.
    func normalizedPage(_ bands: [TextBand]) -> GrayImage {
        var out = GrayImage(width: image.width, height: image.height, value: 255)
        for band in bands {
            for segment in band.segments {
                let piece = normalized(segment, of: band)
                let r = segment.rect
                for row in 0..<r.height {
                    for column in 0..<r.width {
                        let value = piece.pixels[row * r.width + column]
                        let i = (r.y + row) * image.width + r.x + column
                        if value < out.pixels[i] { out.pixels[i] = value }
                    }
                }
            }
        }
        return out
    }
}

/// How a text image is resampled for Tesseract: down by an integer factor first (text drawn
/// with doubled pixels — a VGA text mode on a 1080p screen — back to its own size, where it
/// reads as well as at 1:1), then up.
struct TextScale: Sendable, Equatable {
    var up: Int
    var down: Int

    init(up: Int, down: Int) {
        self.up = max(up, 1)
        self.down = max(down, 1)
    }

    /// For text whose ink is `textHeight` rows high: down to about 12 rows (the 8×16 fonts'),
    /// then up as `TextPreparation.scaleFactor` says.
    init(textHeight: Int) {
        let down = max(1, (textHeight + 2) / 12)
        self.init(up: TextPreparation.scaleFactor(lineHeight: max(textHeight / down, 1)), down: down)
    }
}

/// Making normalised text images readable for Tesseract.
enum TextPreparation {
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

    /// Erases ink (8-connected) reaching outside `rows` (the line's text rows and an allowance
    /// for ascenders and descenders): a mouse pointer resting on the line, the edge of a line
    /// above or below. `image` is dark on light.
    static func removeStrays(_ image: inout GrayImage, rows: Range<Int>) {
        let w = image.width, h = image.height
        guard w > 0, h > 0, rows.lowerBound > 0 || rows.upperBound < h else { return }
        var seen = [Bool](repeating: false, count: w * h)
        var stack: [Int] = []
        var component: [Int] = []
        for start in 0..<(w * h) where image.pixels[start] < 128 && !seen[start] {
            component.removeAll(keepingCapacity: true)
            stack.append(start)
            seen[start] = true
            var outside = false
            while let i = stack.popLast() {
                component.append(i)
                let x = i % w, y = i / w
                if !rows.contains(y) { outside = true }
                for dy in -1...1 {
                    for dx in -1...1 where dx != 0 || dy != 0 {
                        let nx = x + dx, ny = y + dy
                        guard nx >= 0, ny >= 0, nx < w, ny < h else { continue }
                        let n = ny * w + nx
                        if !seen[n] && image.pixels[n] < 128 {
                            seen[n] = true
                            stack.append(n)
                        }
                    }
                }
            }
            if outside { for i in component { image.pixels[i] = 255 } }
        }
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
        stack.reserveCapacity(2 * (w + h))
        var erase: [Int] = []
        ink.withUnsafeBufferPointer { ink in
            outside.withUnsafeMutableBufferPointer { outside in
                for x in 0..<w {
                    stack.append(x)
                    stack.append((h - 1) * w + x)
                }
                for y in 0..<h {
                    stack.append(y * w)
                    stack.append(y * w + w - 1)
                }
                while let i = stack.popLast() {
                    guard !ink[i], !outside[i] else { continue }
                    outside[i] = true
                    let x = i % w
                    if x > 0 { stack.append(i - 1) }
                    if x < w - 1 { stack.append(i + 1) }
                    if i >= w { stack.append(i - w) }
                    if i < (h - 1) * w { stack.append(i + w) }
                }
                // Ink components (8-connected) of at most `maximum` pixels whose neighbours are
                // all holes.
                let maximum = max(2, h / 6) * max(2, h / 6)
                var seen = [Bool](repeating: false, count: w * h)
                var component: [Int] = []
                seen.withUnsafeMutableBufferPointer { seen in
                    for start in 0..<(w * h) where ink[start] && !seen[start] {
                        component.removeAll(keepingCapacity: true)
                        var touchesOutside = false
                        stack.append(start)
                        seen[start] = true
                        while let i = stack.popLast() {
                            component.append(i)
                            let x = i % w, y = i / w
                            for dy in -1...1 {
                                for dx in -1...1 where dx != 0 || dy != 0 {
                                    let nx = x + dx, ny = y + dy
                                    guard nx >= 0, ny >= 0, nx < w, ny < h else {
                                        touchesOutside = true
                                        continue
                                    }
                                    let n = ny * w + nx
                                    if ink[n] {
                                        if !seen[n] {
                                            seen[n] = true
                                            stack.append(n)
                                        }
                                    } else if outside[n] {
                                        touchesOutside = true
                                    }
                                }
                            }
                        }
                        if !touchesOutside, component.count <= maximum { erase += component }
                    }
                }
            }
        }
        image.pixels.withUnsafeMutableBufferPointer { p in
            for i in erase { p[i] = 255 }
        }
    }

    /// A normalised (dark on light) region made ready for Tesseract: dotted zeros cleared,
    /// upscaled smoothly by `scale`, then binarised (grey JPEG fringes made Tesseract see v as
    /// y and o as c), then thickened: measured on the simulator's console frames, this order
    /// reads best (see VisionOCRTests).
    static func prepare(_ normalized: GrayImage, scale: TextScale, phase: (x: Int, y: Int)) -> GrayImage {
        var image = scale.down > 1 ? normalized.downscaled(by: scale.down, phaseX: phase.x, phaseY: phase.y) : normalized
        removeDotsInCounters(&image)
        var scaled = image.upscaled(by: scale.up)
        scaled.pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = p[i] < 140 ? 0 : 255 }
        }
        return thickened(scaled, radius: scale.up / 3)
    }
}
