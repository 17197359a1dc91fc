// Regions of the screen that change by themselves (a blinking cursor, a ticking clock, a frame
// counter), so that the waits can ignore them. The screen is cut into 16×16 cells; a cell is
// self-changing when, in the frames looked at, it changed at least three times with the first
// and the last change at least `MotionHistory.minimumSpread` apart (typing changes a cell once
// or twice — a character, then the next one beside it —; a clock, a blinking cursor or a frame
// counter keep coming back). Learned regions larger in total than
// `MotionHistory.maximumFraction` of the screen are not ignored: that is activity (a progress
// bar, a video), not a clock.

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
        for frame in usable {
            guard let image = try? frame.pixels() else { continue }
            if let previous {
                for (index, changed) in Self.changedCells(previous, image, columns: columns).enumerated() where changed {
                    count[index] += 1
                    first[index] = min(first[index], frame.time)
                    last[index] = max(last[index], frame.time)
                }
            }
            previous = image
        }
        var found = [Bool](repeating: false, count: cells.count)
        for index in cells.indices where count[index] >= MotionHistory.minimumChanges && last[index] - first[index] >= MotionHistory.minimumSpread { found[index] = true }
        let total = found.filter { $0 }.count
        guard total > 0, Double(total) <= MotionHistory.maximumFraction * Double(cells.count) else { return false }
        for index in cells.indices where found[index] {
            learned[index] = true
            cells[index] = true
        }
        return true
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
