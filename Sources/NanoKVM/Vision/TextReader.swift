// Reading text off frames: `ScreenTextReader` OCRs a frame (or an area of it) band by band —
// one text line per Tesseract job, in parallel on the OCR pool — and keeps what it read, so the
// next frame only re-reads the bands whose pixels changed (`wait_text` reads frame after frame;
// a whole 1280×720 screen costs 0.8–2 s on this machine, one changed line ~50 ms).

import Synchronization

/// How `ocr` segments what it reads (Lua `opts.mode`).
public enum OCRMode: String, Sendable, CaseIterable {
    /// Text anywhere: found line by line (bands of ink), each read as one line.
    case screen
    /// One block of text (an area with a paragraph or a menu).
    case block
    /// A single line.
    case line
    /// A single word.
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
        switch options.mode {
        case .screen:
            break
        case .block, .line, .word:
            let segmentation: OCRSegmentation = options.mode == .block ? .block : options.mode == .line ? .line : .word
            let bands = TextLayout.bands(gray)
            let heights = bands.map { $0.height - 2 * TextLayout.bandMargin }.sorted()
            let typical = heights.isEmpty ? gray.height : heights[heights.count / 2]
            let line = try await readRegion(gray, PixelRect(x: 0, y: 0, width: gray.width, height: gray.height),
                                            textHeight: typical, segmentation: segmentation, origin: origin)
            return OCRResult(frameWidth: frame.width, frameHeight: frame.height, lines: line, recognizedBands: 1, reusedBands: 0)
        }
        let previous = cache.withLock { $0 }
        let changedRows: [Bool]? = previous.flatMap { cached in
            guard cached.frameWidth == frame.width, cached.frameHeight == frame.height,
                cached.gray.width == gray.width, cached.gray.height == gray.height
            else { return nil }
            return Self.changedRows(cached.gray, gray, tolerance: Frame.noiseTolerance)
        }
        let layout = TextLayout.bandsWithCores(gray)
        let bands = layout.map(\.band)
        // One scale for the whole screen, from the median text height (a line without
        // descenders is shorter than one with, but it is the same font).
        let heights = bands.map { $0.height - 2 * TextLayout.bandMargin }.sorted()
        let typical = heights.isEmpty ? 16 : heights[heights.count / 2]
        var results = [OCRLine?](repeating: nil, count: bands.count)
        var todo: [Int] = []
        var reused = 0
        for (index, entry) in layout.enumerated() {
            let core = entry.core
            if let changedRows, let cached = previous?.lines[core], !changedRows[core.y..<core.maxY].contains(true) {
                results[index] = cached
                reused += 1
            } else {
                todo.append(index)
            }
        }
        let read = try await withTaskGroup(of: (Int, Result<OCRLine?, NanoKVMError>).self) { group in
            for index in todo {
                let band = bands[index]
                group.addTask {
                    do throws(NanoKVMError) {
                        return (index, .success(try await self.readBand(gray, band, typicalHeight: typical, origin: origin)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var out: [(Int, Result<OCRLine?, NanoKVMError>)] = []
            for await item in group { out.append(item) }
            return out
        }
        for (index, result) in read { results[index] = try result.get() }
        var lines: [PixelRect: OCRLine?] = [:]
        for (index, entry) in layout.enumerated() { lines[entry.core] = results[index] }
        let newCache = Cache(frameWidth: frame.width, frameHeight: frame.height, gray: gray, lines: lines)
        cache.withLock { $0 = newCache }
        return OCRResult(
            frameWidth: frame.width, frameHeight: frame.height, lines: results.compactMap { $0 }, recognizedBands: todo.count,
            reusedBands: reused)
    }

    /// Forgets what was read (the next read reads everything).
    public func reset() { cache.withLock { $0 = nil } }

    /// One band: its segments read as single lines and joined into one line.
    private func readBand(_ gray: GrayImage, _ band: PixelRect, typicalHeight: Int, origin: (x: Int, y: Int)) async throws(NanoKVMError) -> OCRLine? {
        let own = max(band.height - 2 * TextLayout.bandMargin, 1)
        // Lines of about the typical height share its scale; others (titles) use their own.
        let textHeight = abs(own - typicalHeight) * 3 <= typicalHeight ? typicalHeight : own
        // A band much taller than a line is several lines that touch (or a large title).
        let segmentation: OCRSegmentation = textHeight > 40 ? .block : .line
        var words: [OCRWord] = []
        for segment in TextLayout.segments(gray, band: band) {
            let lines = try await readRegion(gray, segment, textHeight: textHeight, segmentation: segmentation, origin: origin)
            words += lines.flatMap(\.words)
        }
        guard !words.isEmpty else { return nil }
        return OCRLine(words: words.sorted { $0.rect.x < $1.rect.x })
    }

    /// One region read with `segmentation`, as lines in frame pixels.
    private func readRegion(
        _ gray: GrayImage, _ region: PixelRect, textHeight: Int, segmentation: OCRSegmentation, origin: (x: Int, y: Int)
    ) async throws(NanoKVMError) -> [OCRLine] {
        let scale = textHeight > 40 ? 1 : TextLayout.scaleFactor(lineHeight: textHeight)
        let border = 12
        let image = TextLayout.prepare(gray.crop(x: region.x, y: region.y, width: region.width, height: region.height), scale: scale, border: border)
        let recognized = try await engine.recognize(image, segmentation: segmentation, language: options.language)
        var byLine: [Int: [OCRWord]] = [:]
        for word in recognized {
            // Specks read as one or two low-confidence characters: a mouse pointer, a cursor.
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
