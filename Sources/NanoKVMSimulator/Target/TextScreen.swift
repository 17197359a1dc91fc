// A text-mode screen as the simulated machine's firmware, boot loader and Linux console draw
// it: a grid of character cells (a Unicode scalar, a foreground and a background from the
// 16-colour VGA palette), drawn with a PSF console font at an integer scale, centred on the
// HDMI frame. The renderer keeps the last frame's pixels and redraws only the cells that
// changed (and the cells under the mouse pointer), so an unchanged screen costs nothing.

import Foundation

/// The 16-colour VGA palette, by index.
enum VGAColor {
    static let black: UInt8 = 0, blue: UInt8 = 1, green: UInt8 = 2, cyan: UInt8 = 3, red: UInt8 = 4
    static let magenta: UInt8 = 5, brown: UInt8 = 6, grey: UInt8 = 7, darkGrey: UInt8 = 8
    static let lightBlue: UInt8 = 9, lightGreen: UInt8 = 10, lightCyan: UInt8 = 11, lightRed: UInt8 = 12
    static let yellow: UInt8 = 14, white: UInt8 = 15

    static let rgb: [(UInt8, UInt8, UInt8)] = [
        (0x00, 0x00, 0x00), (0x00, 0x00, 0xAA), (0x00, 0xAA, 0x00), (0x00, 0xAA, 0xAA),
        (0xAA, 0x00, 0x00), (0xAA, 0x00, 0xAA), (0xAA, 0x55, 0x00), (0xAA, 0xAA, 0xAA),
        (0x55, 0x55, 0x55), (0x55, 0x55, 0xFF), (0x55, 0xFF, 0x55), (0x55, 0xFF, 0xFF),
        (0xFF, 0x55, 0x55), (0xFF, 0x55, 0xFF), (0xFF, 0xFF, 0x55), (0xFF, 0xFF, 0xFF),
    ]
}

struct TextCell: Equatable, Sendable {
    var scalar: Unicode.Scalar = " "
    var foreground: UInt8 = VGAColor.grey
    var background: UInt8 = VGAColor.black
}

/// Where the grid sits on the frame and which font draws it.
struct TextGeometry: Sendable, Equatable {
    var font: PSFFont
    var scale: Int
    var columns: Int
    var rows: Int
    var originX: Int
    var originY: Int

    var cellWidth: Int { font.width * scale }
    var cellHeight: Int { font.height * scale }

    static func == (a: TextGeometry, b: TextGeometry) -> Bool {
        a.font.name == b.font.name && a.scale == b.scale && a.columns == b.columns && a.rows == b.rows
            && a.originX == b.originX && a.originY == b.originY
    }

    /// A fixed grid (80×25 for firmware and boot loaders) with the biggest font and integer
    /// scale that fits, centred (black borders, as a monitor shows a VGA mode).
    static func fixed(columns: Int, rows: Int, fonts: [PSFFont], width: Int, height: Int) -> TextGeometry {
        var best: (font: PSFFont, scale: Int, area: Int)?
        for font in fonts {
            for scale in 1...8 {
                let w = columns * font.width * scale
                let h = rows * font.height * scale
                guard w <= width, h <= height else { break }
                // Prefer native glyphs to scaled ones of the same size (later fonts are bigger).
                if best == nil || w * h > best?.area ?? 0 { best = (font, scale, w * h) }
            }
        }
        let font = best?.font ?? fonts.first ?? PSFFont.builtin
        let scale = best?.scale ?? 1
        return TextGeometry(
            font: font, scale: scale, columns: columns, rows: rows,
            originX: max(0, (width - columns * font.width * scale) / 2), originY: max(0, (height - rows * font.height * scale) / 2))
    }

    /// A framebuffer console: as many cells as fit, from the top-left corner.
    static func filling(font: PSFFont, scale: Int, width: Int, height: Int) -> TextGeometry {
        let s = max(scale, 1)
        return TextGeometry(
            font: font, scale: s, columns: max(width / (font.width * s), 8), rows: max(height / (font.height * s), 2),
            originX: 0, originY: 0)
    }
}

/// One visible line of text and its pixel box on the frame (the OCR ground truth).
public struct SimulatorTextLine: Sendable, Equatable {
    public var row: Int
    public var text: String
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
}

/// The visible text of the simulated screen, line by line.
public struct SimulatorScreenText: Sendable, Equatable {
    public var columns: Int
    public var rows: Int
    public var cellWidth: Int
    public var cellHeight: Int
    public var font: String
    /// Non-blank lines, top to bottom, trailing blanks removed (leading ones kept in `text`;
    /// the box starts at the first non-blank character).
    public var lines: [SimulatorTextLine]

    public var text: String { lines.map(\.text).joined(separator: "\n") }
}

struct TextScreen: Sendable, Equatable {
    var geometry: TextGeometry
    var cells: [TextCell]
    /// The text cursor (an underline), drawn when set.
    var cursor: (row: Int, column: Int)?
    /// Where to draw the mouse pointer, in frame pixels; nil on screens without a mouse.
    var pointer: (x: Int, y: Int)?

    init(geometry: TextGeometry, background: UInt8 = VGAColor.black) {
        self.geometry = geometry
        self.cells = Array(repeating: TextCell(background: background), count: geometry.columns * geometry.rows)
    }

    var columns: Int { geometry.columns }
    var rows: Int { geometry.rows }

    static func == (a: TextScreen, b: TextScreen) -> Bool {
        a.geometry == b.geometry && a.cells == b.cells && a.cursor?.row == b.cursor?.row
            && a.cursor?.column == b.cursor?.column && a.pointer?.x == b.pointer?.x && a.pointer?.y == b.pointer?.y
    }

    mutating func fill(row: Int, column: Int = 0, width: Int? = nil, _ scalar: Unicode.Scalar = " ", fg: UInt8, bg: UInt8) {
        guard row >= 0, row < rows else { return }
        let end = min(column + (width ?? columns), columns)
        guard column < end else { return }
        for c in max(column, 0)..<end { cells[row * columns + c] = TextCell(scalar: scalar, foreground: fg, background: bg) }
    }

    mutating func fillBox(top: Int, left: Int, width: Int, height: Int, fg: UInt8, bg: UInt8) {
        for r in top..<(top + height) { fill(row: r, column: left, width: width, fg: fg, bg: bg) }
    }

    /// Writes `text` from (`row`, `column`), clipped at the right edge.
    mutating func put(_ text: String, row: Int, column: Int, fg: UInt8, bg: UInt8) {
        guard row >= 0, row < rows else { return }
        var c = column
        for scalar in text.unicodeScalars {
            if c >= columns { break }
            if c >= 0 { cells[row * columns + c] = TextCell(scalar: scalar, foreground: fg, background: bg) }
            c += 1
        }
    }

    /// `text` centred on `row`.
    mutating func center(_ text: String, row: Int, fg: UInt8, bg: UInt8) {
        put(text, row: row, column: max((columns - text.unicodeScalars.count) / 2, 0), fg: fg, bg: bg)
    }

    /// A single-line box frame (the box-drawing glyphs every console font has).
    mutating func frame(top: Int, left: Int, width: Int, height: Int, fg: UInt8, bg: UInt8, title: String? = nil) {
        fillBox(top: top, left: left, width: width, height: height, fg: fg, bg: bg)
        let right = left + width - 1
        let bottom = top + height - 1
        fill(row: top, column: left + 1, width: width - 2, "\u{2500}", fg: fg, bg: bg)
        fill(row: bottom, column: left + 1, width: width - 2, "\u{2500}", fg: fg, bg: bg)
        for r in (top + 1)..<bottom {
            put("\u{2502}", row: r, column: left, fg: fg, bg: bg)
            put("\u{2502}", row: r, column: right, fg: fg, bg: bg)
        }
        put("\u{250C}", row: top, column: left, fg: fg, bg: bg)
        put("\u{2510}", row: top, column: right, fg: fg, bg: bg)
        put("\u{2514}", row: bottom, column: left, fg: fg, bg: bg)
        put("\u{2518}", row: bottom, column: right, fg: fg, bg: bg)
        if let title { put(title, row: top, column: left + (width - title.unicodeScalars.count) / 2, fg: fg, bg: bg) }
    }

    func line(_ row: Int) -> String {
        var scalars = String.UnicodeScalarView()
        for c in 0..<columns { scalars.append(cells[row * columns + c].scalar) }
        return String(scalars)
    }

    /// The visible text line by line with pixel boxes. Box-drawing characters count as text
    /// (they are on the screen); a line of blanks is left out.
    var text: SimulatorScreenText {
        var lines: [SimulatorTextLine] = []
        for row in 0..<rows {
            let scalars = (0..<columns).map { cells[row * columns + $0].scalar }
            guard let first = scalars.firstIndex(where: { $0 != " " }), let last = scalars.lastIndex(where: { $0 != " " })
            else { continue }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[0...last])
            lines.append(SimulatorTextLine(
                row: row, text: String(view), x: geometry.originX + first * geometry.cellWidth,
                y: geometry.originY + row * geometry.cellHeight, width: (last - first + 1) * geometry.cellWidth,
                height: geometry.cellHeight))
        }
        return SimulatorScreenText(
            columns: columns, rows: rows, cellWidth: geometry.cellWidth, cellHeight: geometry.cellHeight,
            font: geometry.font.name, lines: lines)
    }
}

/// Keeps the last rendered frame and redraws only what changed.
struct TextScreenRenderer: Sendable {
    private(set) var width = 0
    private(set) var height = 0
    private(set) var pixels: [UInt8] = []
    private var drawn: TextScreen?
    /// Cells redrawn by the last `render` (for tests and the benchmark).
    private(set) var lastRedrawnCells = 0

    mutating func render(_ screen: TextScreen, width: Int, height: Int) {
        var full = false
        if width != self.width || height != self.height || drawn?.geometry != screen.geometry {
            self.width = width
            self.height = height
            pixels = [UInt8](repeating: 0, count: width * height * 3)
            full = true
        }
        let g = screen.geometry
        var dirty = [Bool](repeating: full, count: screen.cells.count)
        if !full, let drawn {
            for i in 0..<screen.cells.count where screen.cells[i] != drawn.cells[i] { dirty[i] = true }
            for cursor in [drawn.cursor, screen.cursor].compactMap({ $0 }) where drawn.cursor?.row != screen.cursor?.row
                || drawn.cursor?.column != screen.cursor?.column
            {
                markCell(row: cursor.row, column: cursor.column, in: &dirty, geometry: g)
            }
            if drawn.pointer?.x != screen.pointer?.x || drawn.pointer?.y != screen.pointer?.y {
                // The cells under the old pointer get their pixels back; the new one is drawn last.
                for pointer in [drawn.pointer, screen.pointer].compactMap({ $0 }) { markPointerCells(pointer, in: &dirty, geometry: g) }
            }
        }
        var redrawn = 0
        let oldPointer = full || drawn?.pointer?.x == screen.pointer?.x && drawn?.pointer?.y == screen.pointer?.y ? nil : drawn?.pointer
        // Moved out (no copy) so the drawing helpers can read `self` while it is written.
        var frame = pixels
        pixels = []
        defer { pixels = frame }
        frame.withUnsafeMutableBufferPointer { buffer in
            // The old pointer may sit on the black border around a fixed grid, where no cell
            // repaints it: blank its box first (the cells under it are redrawn next).
            if let old = oldPointer {
                fill(x: old.x, y: old.y, w: Self.arrowWidth, h: Self.arrow.count, color: (0, 0, 0), into: buffer)
            }
            for i in 0..<screen.cells.count where dirty[i] {
                drawCell(screen.cells[i], row: i / g.columns, column: i % g.columns, geometry: g, into: buffer)
                redrawn += 1
            }
            if let cursor = screen.cursor, cursor.row >= 0, cursor.row < g.rows, cursor.column >= 0, cursor.column < g.columns {
                let index = cursor.row * g.columns + cursor.column
                if dirty[index] || drawn?.cursor?.row != cursor.row || drawn?.cursor?.column != cursor.column {
                    let cell = screen.cells[index]
                    let thickness = max(2 * g.scale, g.cellHeight / 8)
                    fill(
                        x: g.originX + cursor.column * g.cellWidth, y: g.originY + (cursor.row + 1) * g.cellHeight - thickness,
                        w: g.cellWidth, h: thickness, color: VGAColor.rgb[Int(cell.foreground & 15)], into: buffer)
                }
            }
            if let pointer = screen.pointer { drawPointer(at: pointer, into: buffer) }
        }
        lastRedrawnCells = redrawn
        drawn = screen
    }

    private func markCell(row: Int, column: Int, in dirty: inout [Bool], geometry g: TextGeometry) {
        guard row >= 0, row < g.rows, column >= 0, column < g.columns else { return }
        dirty[row * g.columns + column] = true
    }

    private func markPointerCells(_ p: (x: Int, y: Int), in dirty: inout [Bool], geometry g: TextGeometry) {
        let firstColumn = (p.x - g.originX) / g.cellWidth - 1
        let lastColumn = (p.x + Self.arrowWidth - g.originX) / g.cellWidth + 1
        let firstRow = (p.y - g.originY) / g.cellHeight - 1
        let lastRow = (p.y + Self.arrow.count - g.originY) / g.cellHeight + 1
        for r in firstRow...lastRow { for c in firstColumn...lastColumn { markCell(row: r, column: c, in: &dirty, geometry: g) } }
    }

    private func drawCell(_ cell: TextCell, row: Int, column: Int, geometry g: TextGeometry, into buffer: UnsafeMutableBufferPointer<UInt8>) {
        let x0 = g.originX + column * g.cellWidth
        let y0 = g.originY + row * g.cellHeight
        guard x0 + g.cellWidth <= width, y0 + g.cellHeight <= height else { return }
        let fg = VGAColor.rgb[Int(cell.foreground & 15)]
        let bg = VGAColor.rgb[Int(cell.background & 15)]
        let glyph = cell.scalar == " " ? -1 : g.font.glyph(for: cell.scalar)
        let fontWidth = g.font.width
        for fontRow in 0..<g.font.height {
            let bits = glyph < 0 ? 0 : g.font.rowBits(glyph, row: fontRow)
            for sy in 0..<g.scale {
                var o = ((y0 + fontRow * g.scale + sy) * width + x0) * 3
                for fontColumn in 0..<fontWidth {
                    let on = bits & (1 << UInt32(fontWidth - 1 - fontColumn)) != 0
                    let color = on ? fg : bg
                    for _ in 0..<g.scale {
                        buffer[o] = color.0; buffer[o + 1] = color.1; buffer[o + 2] = color.2
                        o += 3
                    }
                }
            }
        }
    }

    private func fill(x: Int, y: Int, w: Int, h: Int, color: (UInt8, UInt8, UInt8), into buffer: UnsafeMutableBufferPointer<UInt8>) {
        for py in max(y, 0)..<min(y + h, height) {
            for px in max(x, 0)..<min(x + w, width) {
                let o = (py * width + px) * 3
                buffer[o] = color.0; buffer[o + 1] = color.1; buffer[o + 2] = color.2
            }
        }
    }

    static let arrow: [String] = [
        "X", "XX", "XWX", "XWWX", "XWWWX", "XWWWWX", "XWWWWWX", "XWWWWWWX", "XWWWWWWWX", "XWWWWXXXXX", "XWXWWX",
        "XX XWWX", "X  XWWX", "    XWWX", "    XXX",
    ]
    static let arrowWidth = 10

    private func drawPointer(at pointer: (x: Int, y: Int), into buffer: UnsafeMutableBufferPointer<UInt8>) {
        for (dy, line) in Self.arrow.enumerated() {
            for (dx, mark) in line.enumerated() where mark != " " {
                let px = pointer.x + dx
                let py = pointer.y + dy
                guard px >= 0, px < width, py >= 0, py < height else { continue }
                let o = (py * width + px) * 3
                let value: UInt8 = mark == "W" ? 0xFF : 0x00
                buffer[o] = value; buffer[o + 1] = value; buffer[o + 2] = value
            }
        }
    }
}
