// Finding a needle area in a frame: normalised cross-correlation (NCC) on grayscale, coarse to
// fine. The frame and the template are halved (box filter) until the template's side would drop
// below 7 px, each axis on its own (see `locate`); the whole coarse frame (or the margin window)
// is searched exhaustively, window sums from integral images; the best few peaks are then refined
// level by level, ±2 px around their position one level finer, up to full resolution. NCC only
// locates; whether it matches is `similarity` (below), on openQA's 0–100 scale.

/// A grayscale template with an optional mask (false: excluded pixel).
struct Template: Sendable {
    var image: GrayImage
    var mask: [Bool]?

    /// The template with excluded pixels set to the mean of the others, so they add nothing to
    /// the correlation.
    func neutralised() -> GrayImage {
        guard let mask else { return image }
        var sum = 0, count = 0
        for (i, keep) in mask.enumerated() where keep {
            sum += Int(image.pixels[i])
            count += 1
        }
        let mean = UInt8(count > 0 ? sum / count : 128)
        var out = image
        for (i, keep) in mask.enumerated() where !keep { out.pixels[i] = mean }
        return out
    }
}

enum TemplateMatcher {
    /// Smallest template side at the coarse level.
    static let minimumCoarseSide = 7
    /// Peaks of the coarse level refined at full resolution.
    static let candidates = 3
    /// The same when one axis is halved more often than the other.
    static let squashedCandidates = 12

    /// The best position of `template` in `frame` within `window` (top-left positions the
    /// template may take, in frame pixels; nil: everywhere), with its NCC (−1…1).
    static func locate(
        _ template: GrayImage, in frame: GrayImage, window: PixelRect? = nil, cropped: Bool = false
    ) -> (x: Int, y: Int, score: Double)? {
        guard template.width > 0, template.height > 0, template.width <= frame.width, template.height <= frame.height else { return nil }
        let full = PixelRect(x: 0, y: 0, width: frame.width - template.width + 1, height: frame.height - template.height + 1)
        let search = clip(window ?? full, to: full)
        guard search.width > 0, search.height > 0 else { return nil }
        // Pyramid levels, per axis: each axis is halved while the template's side along it
        // stays ≥ 7 px, but one axis at most 4× more than the other, so a wide, short template
        // (a line of text) is searched on a frame 8× narrower instead of only 2× smaller.
        var levelsX = 0, levelsY = 0
        while template.height >> (levelsY + 1) >= minimumCoarseSide, levelsY < 6 { levelsY += 1 }
        while template.width >> (levelsX + 1) >= minimumCoarseSide, levelsX < 6 { levelsX += 1 }
        levelsX = min(levelsX, levelsY + 2)
        levelsY = min(levelsY, levelsX + 2)
        let levels = max(levelsX, levelsY)
        let scaleX = 1 << levelsX, scaleY = 1 << levelsY
        // A window (the needle's margin): only the part of the frame it can reach is halved and
        // searched, cut at multiples of the coarsest scale so every level's pixels are the same
        // as in the whole frame's pyramid (3 coarse pixels of slack cover the window's rounding
        // and the refinement's ±2 px).
        if window != nil, !cropped {
            let x0 = max(0, (search.x - 3 * scaleX) / scaleX * scaleX)
            let y0 = max(0, (search.y - 3 * scaleY) / scaleY * scaleY)
            let x1 = min(frame.width, search.maxX + template.width + 3 * scaleX)
            let y1 = min(frame.height, search.maxY + template.height + 3 * scaleY)
            if (x1 - x0) * (y1 - y0) < frame.width * frame.height * 3 / 4 {
                let part = frame.crop(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
                let shifted = PixelRect(x: search.x - x0, y: search.y - y0, width: search.width, height: search.height)
                guard let found = locate(template, in: part, window: shifted, cropped: true) else { return nil }
                return (found.x + x0, found.y + y0, found.score)
            }
        }
        // Level k + 1 is level k halved along x when k < levelsX, along y when k < levelsY.
        var frames = [frame]
        var templates = [template]
        for step in 0..<levels {
            let alongX = step < levelsX, alongY = step < levelsY
            frames.append(frames[frames.count - 1].halved(x: alongX, y: alongY))
            templates.append(templates[templates.count - 1].halved(x: alongX, y: alongY))
        }
        let coarseFrame = frames[levels], coarseTemplate = templates[levels]
        let coarseFull = PixelRect(x: 0, y: 0, width: coarseFrame.width - coarseTemplate.width + 1, height: coarseFrame.height - coarseTemplate.height + 1)
        let coarseWindow = clip(
            PixelRect(x: search.x / scaleX - 1, y: search.y / scaleY - 1, width: search.width / scaleX + 3, height: search.height / scaleY + 3), to: coarseFull)
        // A squashed level blurs lines of text into similar bars: more peaks are refined.
        let peakCount = levels == 0 ? 1 : levelsX == levelsY ? candidates : squashedCandidates
        var peaks = nccPeaks(coarseTemplate, coarseFrame, window: coarseWindow, count: peakCount, separation: max(min(coarseTemplate.width, coarseTemplate.height) / 2, 1))
        guard !peaks.isEmpty else { return nil }
        var level = levels
        while level > 0 {
            level -= 1
            let f = frames[level], t = templates[level]
            let levelFull = PixelRect(x: 0, y: 0, width: f.width - t.width + 1, height: f.height - t.height + 1)
            let sx = 1 << min(level, levelsX), sy = 1 << min(level, levelsY)
            let growX = level < levelsX ? 2 : 1, growY = level < levelsY ? 2 : 1
            let allowed = clip(PixelRect(x: search.x / sx - 1, y: search.y / sy - 1, width: search.width / sx + 3, height: search.height / sy + 3), to: levelFull)
            peaks = peaks.compactMap { peak in
                let around = clip(PixelRect(x: peak.x * growX - 2, y: peak.y * growY - 2, width: 5, height: 5), to: allowed)
                return nccPeaks(t, f, window: around, count: 1, separation: 1).first
            }
            guard !peaks.isEmpty else { return nil }
            // One level finer tells the squashed level's look-alikes apart: the best few go on
            // (refining all of them at full resolution would cost more than the search).
            if peaks.count > candidates { peaks = Array(peaks.sorted { $0.score > $1.score }.prefix(candidates)) }
        }
        let inside = peaks.filter { search.x <= $0.x && $0.x < search.maxX && search.y <= $0.y && $0.y < search.maxY }
        guard let best = (inside.isEmpty ? peaks : inside).max(by: { $0.score < $1.score }) else { return nil }
        return best
    }

    static func clip(_ rect: PixelRect, to bounds: PixelRect) -> PixelRect {
        let x0 = max(rect.x, bounds.x), y0 = max(rect.y, bounds.y)
        let x1 = min(rect.maxX, bounds.maxX), y1 = min(rect.maxY, bounds.maxY)
        return PixelRect(x: x0, y: y0, width: max(x1 - x0, 0), height: max(y1 - y0, 0))
    }

    /// The `count` best NCC positions in `window`, at least `separation` apart.
    static func nccPeaks(_ template: GrayImage, _ frame: GrayImage, window: PixelRect, count: Int, separation: Int) -> [(x: Int, y: Int, score: Double)] {
        guard window.width > 0, window.height > 0 else { return [] }
        let tw = template.width, th = template.height, fw = frame.width
        let n = Double(tw * th)
        var sumT = 0, sumT2 = 0
        for v in template.pixels {
            sumT += Int(v)
            sumT2 += Int(v) * Int(v)
        }
        let varT = Double(sumT2) - Double(sumT) * Double(sumT) / n
        // Integral images of the window's span of the frame.
        let x0 = window.x, y0 = window.y
        let iw = window.width + tw, ih = window.height + th
        var integral = [Int](repeating: 0, count: (iw + 1) * (ih + 1))
        var integral2 = [Int](repeating: 0, count: (iw + 1) * (ih + 1))
        frame.pixels.withUnsafeBufferPointer { p in
            for y in 0..<(ih - 1) {
                var row = 0, row2 = 0
                let source = (y0 + y) * fw + x0
                for x in 0..<(iw - 1) {
                    let v = Int(p[source + x])
                    row += v
                    row2 += v * v
                    integral[(y + 1) * (iw + 1) + x + 1] = integral[y * (iw + 1) + x + 1] + row
                    integral2[(y + 1) * (iw + 1) + x + 1] = integral2[y * (iw + 1) + x + 1] + row2
                }
            }
        }
        var scores = [Double](repeating: -2, count: window.width * window.height)
        let flatTemplate = varT < 1e-6 * n
        template.pixels.withUnsafeBufferPointer { t in
            frame.pixels.withUnsafeBufferPointer { p in
                guard let tBase = t.baseAddress, let pBase = p.baseAddress else { return }
                for wy in 0..<window.height {
                    for wx in 0..<window.width {
                        let a = wy * (iw + 1) + wx, b = a + tw, c = (wy + th) * (iw + 1) + wx, d = c + tw
                        let sumI = integral[d] - integral[b] - integral[c] + integral[a]
                        let sumI2 = integral2[d] - integral2[b] - integral2[c] + integral2[a]
                        let varI = Double(sumI2) - Double(sumI) * Double(sumI) / n
                        if flatTemplate {
                            // A blank template: how flat and how close in level the window is.
                            let meanDiff = abs(Double(sumI) - Double(sumT)) / n
                            scores[wy * window.width + wx] = 1 - meanDiff / 255 - (varI / n).squareRoot() / 128
                            continue
                        }
                        var cross = 0
                        let origin = (y0 + wy) * fw + x0 + wx
                        for ty in 0..<th {
                            // Row pointers and 32-bit products and sums (255² · width fits for
                            // any frame), so the compiler vectorises the inner loop.
                            let frameRow = pBase + (origin + ty * fw), templateRow = tBase + ty * tw
                            var rowSum: Int32 = 0
                            for tx in 0..<tw { rowSum &+= Int32(templateRow[tx]) &* Int32(frameRow[tx]) }
                            cross &+= Int(rowSum)
                        }
                        let numerator = Double(cross) - Double(sumT) * Double(sumI) / n
                        let denominator = (varT * max(varI, 1e-9)).squareRoot()
                        scores[wy * window.width + wx] = varI < 1e-6 * n ? 0 : numerator / denominator
                    }
                }
            }
        }
        var peaks: [(x: Int, y: Int, score: Double)] = []
        var order: [Int]
        if count == 1 {
            order = scores.indices.max(by: { scores[$0] < scores[$1] }).map { [$0] } ?? []
        } else {
            // Only local maxima (≥ their 8 neighbours) can be peaks: sorting those, not every
            // position, keeps a whole-frame search in milliseconds.
            order = []
            let w = window.width, h = window.height
            for y in 0..<h {
                for x in 0..<w {
                    let v = scores[y * w + x]
                    var isMaximum = true
                    neighbours: for ny in max(y - 1, 0)...min(y + 1, h - 1) {
                        for nx in max(x - 1, 0)...min(x + 1, w - 1) where scores[ny * w + nx] > v {
                            isMaximum = false
                            break neighbours
                        }
                    }
                    if isMaximum { order.append(y * w + x) }
                }
            }
            order.sort { scores[$0] > scores[$1] }
        }
        for index in order {
            let x = window.x + index % window.width, y = window.y + index / window.width
            if peaks.contains(where: { abs($0.x - x) < separation && abs($0.y - y) < separation }) { continue }
            peaks.append((x, y, scores[index]))
            if peaks.count >= count { break }
        }
        return peaks
    }

    /// Tile side of `similarity`, in pixels.
    static let tile = 16

    /// How alike `template` is to the frame at (`x`, `y`), 0–100 on openQA's scale. Both are
    /// averaged over 2×2 blocks (which halves JPEG noise but keeps a changed glyph's strokes) and
    /// cut into 16×16-pixel tiles; in each tile a block's error is how far its grey level differs
    /// beyond `tolerance`, the tile's PSNR is 10·log10(255² / mean squared error), its
    /// similarity min(1, PSNR / 40 dB), and the area's similarity its worst tile's ×100.
    /// Taking the worst tile rather than the mean keeps one changed word failing however large
    /// the area is; the tolerance makes the JPEG noise of the same screen (quality 50–100) score
    /// 100 (VisionNeedleTests).
    static func similarity(_ template: Template, in frame: GrayImage, x: Int, y: Int, tolerance: Int = 24) -> Double {
        let t = template.image
        guard x >= 0, y >= 0, x + t.width <= frame.width, y + t.height <= frame.height else { return 0 }
        var worst = 1.0
        var ty = 0
        while ty < t.height {
            var tx = 0
            while tx < t.width {
                var squared = 0, count = 0
                var by = ty
                while by < min(ty + tile, t.height) {
                    var bx = tx
                    while bx < min(tx + tile, t.width) {
                        var a = 0, b = 0, n = 0
                        for yy in by..<min(by + 2, t.height) {
                            for xx in bx..<min(bx + 2, t.width) {
                                let i = yy * t.width + xx
                                if let mask = template.mask, !mask[i] { continue }
                                a += Int(t.pixels[i])
                                b += Int(frame.pixels[(y + yy) * frame.width + x + xx])
                                n += 1
                            }
                        }
                        if n > 0 {
                            let error = max(abs(a - b) / n - tolerance, 0)
                            squared += error * error
                            count += 1
                        }
                        bx += 2
                    }
                    by += 2
                }
                if count > 0, squared > 0 {
                    let mse = Double(squared) / Double(count)
                    let psnr = 10 * log10(255.0 * 255.0 / mse)
                    worst = min(worst, min(max(psnr / 40, 0), 1))
                }
                tx += tile
            }
            ty += tile
        }
        return worst * 100
    }
}

#if canImport(Glibc)
import Glibc
#endif
