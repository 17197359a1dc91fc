// Reading text off frames: `ScreenTextReader` OCRs a frame (or an area of it). `TextPage`
// finds the text lines (bands) and their segments; the bands to read are laid out in one
// composite image per OCR worker (`OCRComposite`), read in parallel on the OCR pool, and the
// words mapped back to the frame. The reader keeps what it read, so the next frame only re-reads
// the bands whose pixels changed (`wait_text` reads frame after frame).

import Synchronization

/// How `ocr` segments what it reads (Lua `opts.mode`).
public enum OCRMode: String, Sendable, CaseIterable {
    /// Text anywhere: found line by line (bands of ink), each read as one line.
    case screen
    /// One block of text (an area with a paragraph or a menu).
    case block
    /// A single line.
    case line
    /// A single word (read as a line, which Tesseract reads better).
    case word
}

/// One recognised word; `rect` is in pixels of the frame.
public struct OCRWord: Sendable, Equatable {
    public var text: String
    /// Tesseract's confidence, 0…100.
    public var confidence: Double
    public var rect: PixelRect
}

/// One line of text: its words left to right, joined by single spaces in `text`.
public struct OCRLine: Sendable, Equatable {
    public var text: String
    public var words: [OCRWord]
    public var rect: PixelRect
    /// The UTF-8 byte range of each word in `text` (0-based, end exclusive), for matching.
    public var wordRanges: [Range<Int>]

    init(words: [OCRWord]) {
        self.words = words
        var text = ""
        var ranges: [Range<Int>] = []
        for word in words {
            if !text.isEmpty { text += " " }
            let start = text.utf8.count
            text += word.text
            ranges.append(start..<text.utf8.count)
        }
        self.text = text
        wordRanges = ranges
        rect = words.dropFirst().reduce(words.first?.rect ?? PixelRect(x: 0, y: 0, width: 0, height: 0)) { $0.union($1.rect) }
    }

    /// The box of the words overlapping the byte range `range` of `text`.
    public func box(ofBytes range: Range<Int>) -> PixelRect? {
        var box: PixelRect?
        for (index, wordRange) in wordRanges.enumerated() where wordRange.overlaps(range) || (range.isEmpty && wordRange.contains(range.lowerBound)) {
            var rect = words[index].rect
            // Narrow the first and last word to the matched characters (monospace estimate).
            let count = max(wordRange.count, 1)
            let from = max(range.lowerBound, wordRange.lowerBound) - wordRange.lowerBound
            let to = min(range.upperBound, wordRange.upperBound) - wordRange.lowerBound
            if to > from, (from > 0 || to < count) {
                let x0 = rect.x + rect.width * from / count
                let x1 = rect.x + (rect.width * to + count - 1) / count
                rect = PixelRect(x: x0, y: rect.y, width: max(x1 - x0, 1), height: rect.height)
            }
            box = box.map { $0.union(rect) } ?? rect
        }
        return box
    }
}

/// What `ocr` returns.
public struct OCRResult: Sendable {
    public var frameWidth: Int
    public var frameHeight: Int
    public var lines: [OCRLine]
    /// Bands read by Tesseract in this pass, and bands taken from the previous pass's cache.
    public var recognizedBands: Int
    public var reusedBands: Int
    public var text: String { lines.map(\.text).joined(separator: "\n") }
    public var words: [OCRWord] { lines.flatMap(\.words) }
}

/// Options of one read.
public struct OCROptions: Sendable {
    public var area: ScreenArea
    public var language: String
    public var mode: OCRMode
    public init(area: ScreenArea = .full, language: String = "eng", mode: OCRMode = .screen) {
        self.area = area
        self.language = language
        self.mode = mode
    }
}

/// OCR of frames, incremental from one read to the next. Reads are serialised (a caller that
/// reads while a read runs waits for it).
public final class ScreenTextReader: Sendable {
    public let options: OCROptions
    let engine: OCREngine
    private let cache = Mutex<Cache?>(nil)

    struct Cache {
        var frameWidth: Int
        var frameHeight: Int
        var gray: GrayImage
        /// By band core (its ink rows).
        var lines: [PixelRect: OCRLine?]
    }

    /// Raises `usage` for a language that is not installed, `unsupported` without libtesseract.
    public init(options: OCROptions = OCROptions(), engine: OCREngine = .shared) throws(NanoKVMError) {
        try OCREngine.checkLanguage(options.language)
        self.options = options
        self.engine = engine
    }

    /// Reads `frame`; bands unchanged since the previous read are not read again.
    public func read(_ frame: Frame) async throws(NanoKVMError) -> OCRResult {
        let full = try GrayImage(frame: frame)
        let rect = options.area.pixelRect(imageWidth: frame.width, imageHeight: frame.height)
        let gray = full.crop(x: rect.x, y: rect.y, width: rect.width, height: rect.height)
        let origin = (x: rect.x, y: rect.y)
        let page = TextPage(gray)
        // One scale for the whole screen, from the median text height (a line without
        // descenders is shorter than one with, but it is the same font).
        let heights = page.bands.map(\.core.height).sorted()
        let typical = heights.isEmpty ? 16 : heights[heights.count / 2]
        switch options.mode {
        case .screen:
            break
        case .block, .line, .word:
            // A word is read as a line: Tesseract's single-word mode misreads console fonts
            // ("Install" as "anstatt" where the line mode reads it right).
            let segmentation: OCRSegmentation = options.mode == .block ? .block : .line
            // Lines cut by the area's top or bottom edge (the ascenders of the next line) are
            // left out: they would read as stray characters, or make one line look like two.
            let tallest = page.bands.map(\.core.height).max() ?? 0
            let kept = page.bands.filter { band in
                let cut = band.core.y == 0 || band.core.maxY >= gray.height
                return !cut || band.core.height * 3 >= tallest * 2
            }
            guard !kept.isEmpty else {
                return OCRResult(frameWidth: frame.width, frameHeight: frame.height, lines: [], recognizedBands: 0, reusedBands: 0)
            }
            let keptHeights = kept.map(\.textHeight).sorted()
            let lines = try await readWhole(
                page, bands: kept, textHeight: keptHeights[keptHeights.count / 2], segmentation: segmentation, origin: origin)
            return OCRResult(frameWidth: frame.width, frameHeight: frame.height, lines: lines, recognizedBands: 1, reusedBands: 0)
        }
        let previous = cache.withLock { $0 }
        let changedRows: [Bool]? = previous.flatMap { cached in
            guard cached.frameWidth == frame.width, cached.frameHeight == frame.height,
                cached.gray.width == gray.width, cached.gray.height == gray.height
            else { return nil }
            return Self.changedRows(cached.gray, gray, tolerance: Frame.noiseTolerance)
        }
        var results = [OCRLine?](repeating: nil, count: page.bands.count)
        var todo: [Int] = []
        var reused = 0
        for (index, band) in page.bands.enumerated() {
            let core = band.core
            if let changedRows, let cached = previous?.lines[core], !changedRows[core.y..<core.maxY].contains(true) {
                results[index] = cached
                reused += 1
            } else {
                todo.append(index)
            }
        }
        // Jobs cut in screen order (a job's lines are neighbours): Tesseract's block statistics
        // (x-height, pitch) depend on which lines share a job, and the accuracy was measured this
        // way. Dealing lines out for an even load (longest first) read the console 15% faster
        // but misread two characters more on it at 1920x1080 (VisionOCRAccuracyTests).
        let jobs = OCRComposite.plans(page: page, bands: todo, typicalHeight: typical, count: engine.workerCount)
        let read = await withTaskGroup(of: Result<[Int: [OCRWord]], NanoKVMError>.self) { group in
            for plan in jobs {
                group.addTask {
                    let job = OCRComposite(page: page, plan: plan)
                    do throws(NanoKVMError) {
                        return .success(try await self.readComposite(job, origin: origin))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var out: [Result<[Int: [OCRWord]], NanoKVMError>] = []
            for await item in group { out.append(item) }
            return out
        }
        for result in read {
            for (band, words) in try result.get() where !words.isEmpty {
                results[band] = OCRLine(words: words.sorted { $0.rect.x < $1.rect.x })
            }
        }
        var lines: [PixelRect: OCRLine?] = [:]
        for (index, band) in page.bands.enumerated() { lines[band.core] = results[index] }
        let newCache = Cache(frameWidth: frame.width, frameHeight: frame.height, gray: gray, lines: lines)
        cache.withLock { $0 = newCache }
        return OCRResult(
            frameWidth: frame.width, frameHeight: frame.height, lines: results.compactMap { $0 }, recognizedBands: todo.count,
            reusedBands: reused)
    }

    /// Forgets what was read (the next read reads everything).
    public func reset() { cache.withLock { $0 = nil } }

    /// One composite read by Tesseract; its words by band, in frame pixels.
    private func readComposite(_ job: OCRComposite, origin: (x: Int, y: Int)) async throws(NanoKVMError) -> [Int: [OCRWord]] {
        let recognized = try await engine.recognize(job.image, segmentation: job.segmentation, language: options.language)
        var byBand: [Int: [OCRWord]] = [:]
        for word in recognized {
            // Specks read as one or two low-confidence characters: a mouse pointer, a cursor.
            if word.confidence < 50, word.text.count <= 2 { continue }
            guard let (band, rect) = job.locate(left: word.left, top: word.top, right: word.right, bottom: word.bottom) else { continue }
            let moved = PixelRect(x: rect.x + origin.x, y: rect.y + origin.y, width: rect.width, height: rect.height)
            byBand[band, default: []].append(OCRWord(text: word.text, confidence: word.confidence, rect: moved))
        }
        return byBand
    }

    /// The whole (normalised) area read with `segmentation`, as lines in frame pixels.
    private func readWhole(
        _ page: TextPage, bands: [TextBand], textHeight: Int, segmentation: OCRSegmentation, origin: (x: Int, y: Int)
    ) async throws(NanoKVMError) -> [OCRLine] {
        let scale = textHeight > 40 ? 1 : TextPreparation.scaleFactor(lineHeight: textHeight)
        let border = OCRComposite.border
        let image = TextPreparation.prepare(page.normalizedPage(bands), scale: TextScale(up: scale, down: 1), phase: (0, 0)).bordered(border)
        let recognized = try await engine.recognize(image, segmentation: segmentation, language: options.language)
        let region = PixelRect(x: 0, y: 0, width: page.image.width, height: page.image.height)
        var byLine: [Int: [OCRWord]] = [:]
        for word in recognized {
            if word.confidence < 50, word.text.count <= 2 { continue }
            let x0 = max((word.left - border) / scale, 0) + region.x + origin.x
            let y0 = max((word.top - border) / scale, 0) + region.y + origin.y
            let x1 = min((word.right - border + scale - 1) / scale, region.width) + region.x + origin.x
            let y1 = min((word.bottom - border + scale - 1) / scale, region.height) + region.y + origin.y
            let rect = PixelRect(x: x0, y: y0, width: max(x1 - x0, 1), height: max(y1 - y0, 1))
            byLine[word.line, default: []].append(OCRWord(text: word.text, confidence: word.confidence, rect: rect))
        }
        return byLine.keys.sorted().compactMap { key in byLine[key].map { OCRLine(words: $0) } }
    }

    /// Per row: whether some pixel differs by more than `tolerance`.
    static func changedRows(_ a: GrayImage, _ b: GrayImage, tolerance: Int) -> [Bool] {
        var rows = [Bool](repeating: false, count: a.height)
        a.pixels.withUnsafeBufferPointer { pa in
            b.pixels.withUnsafeBufferPointer { pb in
                for y in 0..<a.height {
                    let row = y * a.width
                    for x in 0..<a.width where abs(Int(pa[row + x]) - Int(pb[row + x])) > tolerance {
                        rows[y] = true
                        break
                    }
                }
            }
        }
        return rows
    }
}

/// Text lines to read in one Tesseract job, laid out as one image: each band a strip (bands one
/// under the other), its segments side by side in the strip, every segment made dark on light
/// on its own and scaled for its line height. One job for many lines saves Tesseract's
/// per-image work (thresholding, page layout) on each; the blank parts of the screen are never
/// handed over at all.
struct OCRComposite: Sendable {
    /// One segment's place in the composite.
    struct Piece: Sendable {
        var band: Int
        /// Where it comes from, in pixels of the page.
        var source: PixelRect
        /// Where it is in the composite.
        var x: Int, y: Int, width: Int, height: Int
        var scale: TextScale
    }

    var image: GrayImage
    var pieces: [Piece]
    var segmentation: OCRSegmentation

    /// White around the composite, in its pixels.
    static let border = 12

    /// What one job reads: bands of the page and the scale of each. Its image is made by
    /// `init(page:plan:)` on the task that reads it, so the jobs' images are made in parallel.
    struct Plan: Sendable {
        var bands: [(index: Int, scale: TextScale)]
        var segmentation: OCRSegmentation
    }

    /// The bands `bands` of `page` as about `count` jobs of similar size (bands in order);
    /// bands much taller than a line (large titles, or lines that touch) get a job each.
    static func plans(page: TextPage, bands: [Int], typicalHeight: Int, count: Int) -> [Plan] {
        var regular: [(band: Int, scale: TextScale, area: Int)] = []
        var jobs: [Plan] = []
        for index in bands {
            let band = page.bands[index]
            let own = max(band.core.height, 1)
            // Lines of about the typical height share its scale; others (titles) use their own.
            let textHeight = abs(own - typicalHeight) * 3 <= typicalHeight ? typicalHeight : own
            if textHeight > 40 {
                jobs.append(Plan(bands: [(index, TextScale(up: 1, down: 1))], segmentation: .block))
                continue
            }
            let scale = TextScale(textHeight: textHeight)
            let width = band.segments.reduce(0) { $0 + $1.rect.width }
            regular.append((index, scale, width * band.band.height * scale.up * scale.up / (scale.down * scale.down)))
        }
        guard !regular.isEmpty else { return jobs }
        let total = regular.reduce(0) { $0 + $1.area }
        let parts = max(1, min(count, regular.count))
        var current: [(index: Int, scale: TextScale)] = []
        var accumulated = 0
        var made = 0
        for (position, entry) in regular.enumerated() {
            current.append((entry.band, entry.scale))
            accumulated += entry.area
            let left = regular.count - position - 1
            if made < parts - 1, accumulated * parts >= total * (made + 1), left > 0 {
                jobs.append(Plan(bands: current, segmentation: .block))
                current = []
                made += 1
            }
        }
        if !current.isEmpty { jobs.append(Plan(bands: current, segmentation: .block)) }
        return jobs
    }

    init(page: TextPage, plan: Plan) {
        self.init(page: page, bands: plan.bands, segmentation: plan.segmentation)
    }

    init(page: TextPage, bands: [(index: Int, scale: TextScale)], segmentation: OCRSegmentation) {
        self.segmentation = segmentation
        var prepared: [(piece: Piece, image: GrayImage)] = []
        var y = Self.border
        var width = 0
        for (index, scale) in bands {
            let band = page.bands[index]
            let textHeight = band.core.height * scale.up / scale.down
            // Segments a blank of about two characters apart: separate words of one line.
            let gap = max(textHeight, 16)
            var x = Self.border
            var stripHeight = 0
            for segment in band.segments {
                // Blocks of a downscale aligned on the glyphs' pixels (text drawn with doubled
                // pixels starts its ink on a block's edge).
                let r = segment.rect
                let phase = (x: (segment.inkStart - r.x) % scale.down, y: (band.core.y - r.y) % scale.down)
                let image = TextPreparation.prepare(page.normalized(segment, of: band), scale: scale, phase: phase)
                let covered = PixelRect(
                    x: r.x + phase.x, y: r.y + phase.y, width: (r.width - phase.x) / scale.down * scale.down,
                    height: (r.height - phase.y) / scale.down * scale.down)
                let piece = Piece(band: index, source: covered, x: x, y: y, width: image.width, height: image.height, scale: scale)
                prepared.append((piece, image))
                x += image.width + gap
                stripHeight = max(stripHeight, image.height)
            }
            width = max(width, x - gap + Self.border)
            // Strips a third of a line apart, on top of each band's own margins.
            y += stripHeight + max(textHeight / 3, 4)
        }
        var image = GrayImage(width: max(width, 1), height: y + Self.border, value: 255)
        for (piece, source) in prepared {
            source.pixels.withUnsafeBufferPointer { s in
                image.pixels.withUnsafeMutableBufferPointer { d in
                    for row in 0..<piece.height {
                        let to = (piece.y + row) * image.width + piece.x
                        for column in 0..<piece.width { d[to + column] = s[row * piece.width + column] }
                    }
                }
            }
        }
        self.image = image
        pieces = prepared.map(\.piece)
    }

    /// The band and page rectangle of a word Tesseract found at (`left`, `top`)–(`right`,
    /// `bottom`) in the composite: the piece under the word's centre, else the nearest one.
    func locate(left: Int, top: Int, right: Int, bottom: Int) -> (band: Int, rect: PixelRect)? {
        let cx = (left + right) / 2, cy = (top + bottom) / 2
        func distance(_ p: Piece) -> Int {
            let dx = cx < p.x ? p.x - cx : cx >= p.x + p.width ? cx - (p.x + p.width - 1) : 0
            let dy = cy < p.y ? p.y - cy : cy >= p.y + p.height ? cy - (p.y + p.height - 1) : 0
            // A strip away counts more than a segment away: words stay on their line.
            return dy * 8 + dx
        }
        guard let piece = pieces.min(by: { distance($0) < distance($1) }) else { return nil }
        let up = piece.scale.up, down = piece.scale.down
        let x0 = min(max((left - piece.x) * down / up, 0), piece.source.width) + piece.source.x
        let y0 = min(max((top - piece.y) * down / up, 0), piece.source.height) + piece.source.y
        let x1 = min(max(((right - piece.x) * down + up - 1) / up, 0), piece.source.width) + piece.source.x
        let y1 = min(max(((bottom - piece.y) * down + up - 1) / up, 0), piece.source.height) + piece.source.y
        return (piece.band, PixelRect(x: x0, y: y0, width: max(x1 - x0, 1), height: max(y1 - y0, 1)))
    }
}

extension GrayImage {
    /// The image inside a white frame `border` pixels wide.
    func bordered(_ border: Int) -> GrayImage {
        guard border > 0 else { return self }
        var out = GrayImage(width: width + 2 * border, height: height + 2 * border, value: 255)
        pixels.withUnsafeBufferPointer { source in
            out.pixels.withUnsafeMutableBufferPointer { destination in
                for y in 0..<height {
                    let to = (y + border) * out.width + border
                    for x in 0..<width { destination[to + x] = source[y * width + x] }
                }
            }
        }
        return out
    }
}
