// Regions of the screen that change by themselves (a blinking cursor, a ticking clock, a frame
// counter), so that the waits can ignore them. The screen is cut into 16×16 cells; a cell is
// self-changing when, in the frames looked at, it changed at least three times with the first
// and the last change at least `MotionHistory.minimumSpread` apart (typing changes a cell once
// or twice — a character, then the next one beside it —; a clock, a blinking cursor or a frame
// counter keep coming back); such a cell that always shows ink grows along the run of text it is
// part of (a clock's rarer digits). Self-changing cells larger in total than
// `MotionHistory.maximumFraction` of the screen are not ignored: that is activity (a progress
// bar, a video), not a clock. History from before the screen last changed as a whole (a page
// turned, a menu opened) is not looked at: that was another screen.

public enum MotionHistory {
    /// The stream keeps one frame per this many seconds…
    public static let interval = 0.25
    /// …over this many seconds (a clock ticking once a second changes three times in it).
    public static let span = 3.5
    /// Without history (the stream was closed), the waits first watch this long.
    public static let settle = 2.2
    static let minimumSpread = 1.0
    static let minimumChanges = 3
    static let maximumFraction = 0.03
    static let cell = 16
    /// Cells a self-changing cell grows by along its text, each way.
    static let maximumGrowth = 12
    /// Cells learned with their growth may reach `maximumFraction` of the screen, or this many
    /// on a small screen (two clock lines of 640×480 in 16-pixel cells).
    static let growthLimit = 64
}

/// Ignored cells of a frame size: from `ignore` areas and learned self-changing cells.
public struct MotionMask: Sendable {
    public let width: Int
    public let height: Int
    let columns: Int
    let rows: Int
    var cells: [Bool]
    /// The learned self-changing cells (a subset of `cells`).
    var learned: [Bool]

    public init(width: Int, height: Int, ignore: [ScreenArea] = []) {
        self.width = width
        self.height = height
        columns = (width + MotionHistory.cell - 1) / MotionHistory.cell
        rows = (height + MotionHistory.cell - 1) / MotionHistory.cell
        cells = [Bool](repeating: false, count: columns * rows)
        learned = cells
        for area in ignore {
            let r = area.pixelRect(imageWidth: width, imageHeight: height)
            for y in (r.y / MotionHistory.cell)...((r.y + r.height - 1) / MotionHistory.cell) {
                for x in (r.x / MotionHistory.cell)...((r.x + r.width - 1) / MotionHistory.cell) { cells[y * columns + x] = true }
            }
        }
    }

    public var isEmpty: Bool { !cells.contains(true) }

    /// Cells where `a` and `b` differ beyond JPEG noise.
    static func changedCells(_ a: RGBImage, _ b: RGBImage, columns: Int) -> [Bool] {
        let cell = MotionHistory.cell
        let rows = (a.height + cell - 1) / cell
        var out = [Bool](repeating: false, count: columns * rows)
        let limit = Frame.noiseTolerance
        a.pixels.withUnsafeBufferPointer { pa in
            b.pixels.withUnsafeBufferPointer { pb in
                for y in 0..<a.height {
                    let row = y * a.width * 3
                    let cellRow = (y / cell) * columns
                    var x = 0
                    while x < a.width {
                        let index = cellRow + x / cell
                        if out[index] {
                            x = (x / cell + 1) * cell
                            continue
                        }
                        let o = row + x * 3
                        if abs(Int(pa[o]) - Int(pb[o])) > limit || abs(Int(pa[o + 1]) - Int(pb[o + 1])) > limit
                            || abs(Int(pa[o + 2]) - Int(pb[o + 2])) > limit
                        {
                            out[index] = true
                        }
                        x += 1
                    }
                }
            }
        }
        return out
    }

    /// Learns self-changing cells from consecutive `frames` (same size as the mask; others are
    /// skipped). Returns whether anything was learned.
    @discardableResult
    public mutating func learn(from frames: [Frame]) -> Bool {
        let usable = frames.filter { $0.width == width && $0.height == height }
        guard usable.count >= 3 else { return false }
        var first = [Double](repeating: .infinity, count: cells.count)
        var last = [Double](repeating: -.infinity, count: cells.count)
        var count = [Int](repeating: 0, count: cells.count)
        var previous: RGBImage?
        var images: [RGBImage] = []
        for frame in usable {
            guard let image = try? frame.pixels() else { continue }
            if let previous {
                let changed = Self.changedCells(previous, image, columns: columns)
                if Double(changed.filter { $0 }.count) > MotionHistory.maximumFraction * Double(cells.count) {
                    // The screen changed as a whole: learn from here on only.
                    first = first.map { _ in .infinity }
                    last = last.map { _ in -.infinity }
                    count = count.map { _ in 0 }
                    images = []
                } else {
                    for (index, changed) in changed.enumerated() where changed {
                        count[index] += 1
                        first[index] = min(first[index], frame.time)
                        last[index] = max(last[index], frame.time)
                    }
                }
            }
            images.append(image)
            previous = image
        }
        var found = [Bool](repeating: false, count: cells.count)
        for index in cells.indices where count[index] >= MotionHistory.minimumChanges && last[index] - first[index] >= MotionHistory.minimumSpread { found[index] = true }
        // Too much changing by itself is activity (a progress bar, a video), not a clock.
        let changing = found.filter { $0 }.count
        guard changing > 0, Double(changing) <= MotionHistory.maximumFraction * Double(cells.count) else { return false }
        found = grownAlongText(found, images: images)
        for index in cells.indices where found[index] {
            learned[index] = true
            cells[index] = true
        }
        return true
    }

    /// A clock's seconds change every second, its tens of seconds, minutes and hours more rarely
    /// than a few seconds of history can show: a self-changing cell that always shows ink (a
    /// digit, never blank — unlike a blinking cursor, which is blank half the time) extends to the
    /// run of inked cells it is part of, left and right along its row up to the first blank cell
    /// (at most `MotionHistory.maximumGrowth` cells each way: the whole `12:00:07`, the whole
    /// counter, not a rule across the screen), and up and down to the rows of cells its line of
    /// text covers: the pixel rows that changed in the cell, extended while the run's pixel rows
    /// show ink (a glyph's top or bottom in the next row of cells is taken, the line above or
    /// below, past a blank pixel row, is not, even where it shares a row of cells with the
    /// clock). Each grown run is taken whole while the cells learned stay within
    /// `MotionHistory.growthLimit`; a run that would pass it is left out, the others are still
    /// taken.
    func grownAlongText(_ found: [Bool], images: [RGBImage]) -> [Bool] {
        guard let latest = images.last, images.count >= 2 else { return found }
        let cell = MotionHistory.cell
        var inkCache: [Int: Bool] = [:]
        func inked(_ column: Int, _ row: Int) -> Bool {
            let index = row * columns + column
            if let known = inkCache[index] { return known }
            let value = Self.hasInk(latest, column: column, row: row)
            inkCache[index] = value
            return value
        }
        var grown = found
        var total = found.filter { $0 }.count
        let limit = max(Int(MotionHistory.maximumFraction * Double(cells.count)), MotionHistory.growthLimit)
        let reach = MotionHistory.maximumGrowth
        for row in 0..<rows {
            for seed in 0..<columns where found[row * columns + seed] {
                guard images.allSatisfy({ Self.hasInk($0, column: seed, row: row) }) else { continue }
                var low = seed, high = seed
                while low - 1 >= 0, seed - (low - 1) <= reach, inked(low - 1, row) { low -= 1 }
                while high + 1 < columns, (high + 1) - seed <= reach, inked(high + 1, row) { high += 1 }
                guard let changed = Self.changedPixelRows(images, column: seed, row: row) else { continue }
                let x0 = low * cell, x1 = min((high + 1) * cell, latest.width)
                var top = changed.lowerBound, bottom = changed.upperBound - 1
                while top - 1 >= max(0, row * cell - 2 * cell), Self.rowHasInk(latest, y: top - 1, x0: x0, x1: x1) { top -= 1 }
                while bottom + 1 < min(latest.height, (row + 3) * cell), Self.rowHasInk(latest, y: bottom + 1, x0: x0, x1: x1) { bottom += 1 }
                var run: [Int] = []
                for cellRow in (top / cell)...(bottom / cell) {
                    for column in low...high where cellRow == row || inked(column, cellRow) { run.append(cellRow * columns + column) }
                }
                let added = run.filter { !grown[$0] }
                guard total + added.count <= limit else { continue }
                for index in added { grown[index] = true }
                total += added.count
            }
        }
        return grown
    }

    /// The pixel rows of a cell that differ beyond JPEG noise between some two consecutive images.
    static func changedPixelRows(_ images: [RGBImage], column: Int, row: Int) -> Range<Int>? {
        let cell = MotionHistory.cell
        guard let first = images.first else { return nil }
        let x0 = column * cell, y0 = row * cell
        let x1 = min(x0 + cell, first.width), y1 = min(y0 + cell, first.height)
        var top = Int.max, bottom = -1
        for (a, b) in zip(images, images.dropFirst()) {
            a.pixels.withUnsafeBufferPointer { pa in
                b.pixels.withUnsafeBufferPointer { pb in
                    for y in y0..<y1 {
                        for x in x0..<x1 {
                            let o = (y * first.width + x) * 3
                            if abs(Int(pa[o]) - Int(pb[o])) > Frame.noiseTolerance || abs(Int(pa[o + 1]) - Int(pb[o + 1])) > Frame.noiseTolerance
                                || abs(Int(pa[o + 2]) - Int(pb[o + 2])) > Frame.noiseTolerance
                            {
                                top = min(top, y)
                                bottom = max(bottom, y)
                                break
                            }
                        }
                    }
                }
            }
        }
        return bottom >= 0 ? top..<(bottom + 1) : nil
    }

    /// Whether pixel row `y` between `x0` and `x1` holds more than a flat background.
    static func rowHasInk(_ image: RGBImage, y: Int, x0: Int, x1: Int) -> Bool {
        hasInk(image, x0: x0, y0: y, x1: x1, y1: y + 1)
    }

    /// Whether a cell holds more than a flat background.
    static func hasInk(_ image: RGBImage, column: Int, row: Int) -> Bool {
        let cell = MotionHistory.cell
        return hasInk(image, x0: column * cell, y0: row * cell, x1: (column + 1) * cell, y1: (row + 1) * cell)
    }

    /// Whether the pixels from (`x0`, `y0`) to (`x1`, `y1`) (exclusive, clipped to the image)
    /// hold more than a flat background: their luminance spans more than the JPEG noise
    /// tolerance twice over.
    static func hasInk(_ image: RGBImage, x0: Int, y0: Int, x1: Int, y1: Int) -> Bool {
        let x0 = max(x0, 0), y0 = max(y0, 0), x1 = min(x1, image.width), y1 = min(y1, image.height)
        guard x0 < x1, y0 < y1 else { return false }
        var low = 255, high = 0
        image.pixels.withUnsafeBufferPointer { p in
            for y in y0..<y1 {
                for x in x0..<x1 {
                    let o = (y * image.width + x) * 3
                    let value = (77 * Int(p[o]) + 150 * Int(p[o + 1]) + 29 * Int(p[o + 2])) >> 8
                    low = min(low, value)
                    high = max(high, value)
                }
            }
        }
        return high - low > 2 * Frame.noiseTolerance
    }

    /// `frame`'s pixels with the ignored cells replaced by `reference`'s, so that a diff does
    /// not see them.
    func masked(_ frame: RGBImage, with reference: RGBImage) -> RGBImage {
        guard !isEmpty, frame.width == width, frame.height == height, reference.width == width, reference.height == height else { return frame }
        var pixels = frame.pixels
        let cell = MotionHistory.cell
        reference.pixels.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { destination in
                for y in 0..<height {
                    let cellRow = (y / cell) * columns
                    for cx in 0..<columns where cells[cellRow + cx] {
                        let from = (y * width + cx * cell) * 3
                        let count = (min((cx + 1) * cell, width) - cx * cell) * 3
                        for i in 0..<count { destination[from + i] = source[from + i] }
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels) ?? frame
    }

    /// The ignored regions as rectangles (cells merged along rows, then equal runs down columns).
    public var regions: [PixelRect] { Self.rectangles(cells, columns: columns, rows: rows, width: width, height: height) }
    /// The learned part only.
    public var learnedRegions: [PixelRect] { Self.rectangles(learned, columns: columns, rows: rows, width: width, height: height) }

    static func rectangles(_ cells: [Bool], columns: Int, rows: Int, width: Int, height: Int) -> [PixelRect] {
        let cell = MotionHistory.cell
        var runs: [PixelRect] = []
        for y in 0..<rows {
            var x = 0
            while x < columns {
                guard cells[y * columns + x] else { x += 1; continue }
                let start = x
                while x < columns, cells[y * columns + x] { x += 1 }
                let rect = PixelRect(x: start * cell, y: y * cell, width: min(x * cell, width) - start * cell, height: min((y + 1) * cell, height) - y * cell)
                if let index = runs.firstIndex(where: { $0.x == rect.x && $0.width == rect.width && $0.maxY == rect.y }) {
                    runs[index].height += rect.height
                } else {
                    runs.append(rect)
                }
            }
        }
        return runs
    }
}
