// The screen in a terminal: each character cell is an upper half block `▀` whose foreground is
// the upper pixel and whose background is the lower one (24-bit colour escapes), so a cell
// (about twice as tall as wide) shows two square pixels. The frame is scaled down by area
// averaging to the requested number of columns, keeping its aspect ratio.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum TerminalPreview {
    /// Renders `frame` `columns` cells wide (1…1000), at most `maxRows` rows high (the width
    /// shrinks to fit). Every line ends with a colour reset and a newline.
    public static func render(_ frame: Frame, columns: Int, maxRows: Int? = nil) throws(NanoKVMError) -> String {
        guard columns >= 1, columns <= 1000 else {
            throw NanoKVMError(.usage, "width must be 1–1000 columns, got \(columns)")
        }
        if let maxRows {
            guard maxRows >= 1 else { throw NanoKVMError(.usage, "the preview needs at least one row, got \(maxRows)") }
        }
        let image = try frame.pixels()
        let size = cells(width: image.width, height: image.height, columns: columns, maxRows: maxRows)
        let small = downscale(image, toWidth: size.columns, toHeight: size.rows * 2)
        var out: [UInt8] = []
        out.reserveCapacity(size.columns * size.rows * 40)
        let halfBlock = Array("▀".utf8)
        for row in 0..<size.rows {
            var lastTop: (UInt8, UInt8, UInt8)?
            var lastBottom: (UInt8, UInt8, UInt8)?
            for column in 0..<size.columns {
                let t = (row * 2 * size.columns + column) * 3
                let b = ((row * 2 + 1) * size.columns + column) * 3
                let top = (small[t], small[t + 1], small[t + 2])
                let bottom = (small[b], small[b + 1], small[b + 2])
                if lastTop.map({ $0 != top }) ?? true {
                    append(&out, "\u{1B}[38;2;\(top.0);\(top.1);\(top.2)m")
                    lastTop = top
                }
                if lastBottom.map({ $0 != bottom }) ?? true {
                    append(&out, "\u{1B}[48;2;\(bottom.0);\(bottom.1);\(bottom.2)m")
                    lastBottom = bottom
                }
                out += halfBlock
            }
            append(&out, "\u{1B}[0m\n")
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Columns and rows of the preview of a `width`×`height` image: `columns` wide unless
    /// `maxRows` forces it narrower; rows = height scaled like the width, halved (two pixels
    /// per cell), at least one.
    public static func cells(width: Int, height: Int, columns: Int, maxRows: Int? = nil) -> (columns: Int, rows: Int) {
        let w = max(width, 1)
        let h = max(height, 1)
        var cols = max(min(columns, w), 1)
        var rows = max(Int((Double(cols) * Double(h) / Double(w) / 2).rounded()), 1)
        if let maxRows, rows > maxRows {
            rows = max(maxRows, 1)
            cols = max(min(Int((Double(rows) * 2 * Double(w) / Double(h)).rounded()), cols), 1)
        }
        return (cols, rows)
    }

    /// The terminal's size on `fd` (stdout by default), nil when it is not a terminal.
    public static func terminalSize(fd: Int32 = 1) -> (columns: Int, rows: Int)? {
        guard isatty(fd) == 1 else { return nil }
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return nil }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    /// Area-averaging downscale (each output pixel is the mean of the source pixels it covers).
    static func downscale(_ image: RGBImage, toWidth: Int, toHeight: Int) -> [UInt8] {
        let w = image.width
        let h = image.height
        // Source ranges of each output column and row (at least one pixel each).
        func ranges(_ source: Int, _ target: Int) -> [(Int, Int)] {
            (0..<target).map { i in
                let start = i * source / target
                let end = max((i + 1) * source / target, start + 1)
                return (start, min(end, source))
            }
        }
        let xs = ranges(w, toWidth)
        let ys = ranges(h, toHeight)
        var out = [UInt8](repeating: 0, count: toWidth * toHeight * 3)
        var sums = [Int](repeating: 0, count: toWidth * 3)
        image.pixels.withUnsafeBufferPointer { pixels in
            for (oy, (y0, y1)) in ys.enumerated() {
                for i in sums.indices { sums[i] = 0 }
                for y in y0..<y1 {
                    let rowStart = y * w * 3
                    for (ox, (x0, x1)) in xs.enumerated() {
                        var r = 0
                        var g = 0
                        var b = 0
                        var o = rowStart + x0 * 3
                        let end = rowStart + x1 * 3
                        while o < end {
                            r += Int(pixels[o]); g += Int(pixels[o + 1]); b += Int(pixels[o + 2])
                            o += 3
                        }
                        sums[ox * 3] += r; sums[ox * 3 + 1] += g; sums[ox * 3 + 2] += b
                    }
                }
                let rows = y1 - y0
                for (ox, (x0, x1)) in xs.enumerated() {
                    let count = rows * (x1 - x0)
                    let d = (oy * toWidth + ox) * 3
                    out[d] = UInt8(sums[ox * 3] / count)
                    out[d + 1] = UInt8(sums[ox * 3 + 1] / count)
                    out[d + 2] = UInt8(sums[ox * 3 + 2] / count)
                }
            }
        }
        return out
    }

    private static func append(_ out: inout [UInt8], _ text: String) {
        out += Array(text.utf8)
    }
}
