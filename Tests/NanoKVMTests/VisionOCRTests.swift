// OCR of the simulator's screen: character error rate against the simulator's own console
// text, polarity and scale handling on frames rendered here, the incremental band cache, and
// the waiter's timeout message.

import Foundation
@testable import NanoKVM
@testable import NanoKVMSimulator
import Testing

/// Levenshtein distance over characters.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}

/// Text compared line by line: box-drawing characters (U+2500–U+257F) taken out, trimmed, runs
/// of spaces as one, blank lines dropped.
func normalizedText(_ text: String) -> String {
    text.split(separator: "\n").map { line in
        let scalars = line.unicodeScalars.map { (0x2500...0x257F).contains($0.value) ? " " : Character($0) }
        return String(scalars).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }.filter { !$0.isEmpty }.joined(separator: "\n")
}

func characterErrorRate(read: String, truth: String) -> Double {
    let t = normalizedText(truth)
    return Double(editDistance(normalizedText(read), t)) / Double(max(t.count, 1))
}

/// A frame with `lines` drawn in the simulator's 8×16 font at `scale`, colours given.
func renderedFrame(_ lines: [String], width: Int, height: Int, scale: Int = 1, ink: UInt8, paper: UInt8, x: Int = 16, y: Int = 16, pitch: Int = 18) -> Frame? {
    var pixels = [UInt8](repeating: paper, count: width * height * 3)
    for (row, line) in lines.enumerated() {
        for (column, character) in line.utf8.enumerated() {
            for glyphRow in 0..<BitmapFont.height {
                let bits = BitmapFont.rowBits(character, row: glyphRow)
                for bit in 0..<8 where bits & (0x80 >> UInt8(bit)) != 0 {
                    for sy in 0..<scale {
                        for sx in 0..<scale {
                            let px = x + (column * 8 + bit) * scale + sx
                            let py = y + (row * pitch + glyphRow) * scale + sy
                            guard px < width, py < height else { continue }
                            let o = (py * width + px) * 3
                            pixels[o] = ink
                            pixels[o + 1] = ink
                            pixels[o + 2] = ink
                        }
                    }
                }
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels).map { Frame(image: $0) }
}

/// One text row of cells with their own colours (`runs` drawn one after the other from column
/// 2 of row 1), on a frame of `frameLevel`: a BIOS tab row, a highlighted menu entry.
func renderedRow(_ runs: [(text: String, ink: UInt8, paper: UInt8)], width: Int, height: Int, frameLevel: UInt8, scale: Int = 1) -> Frame? {
    var pixels = [UInt8](repeating: frameLevel, count: width * height * 3)
    var column = 2
    let top = BitmapFont.height * scale
    for run in runs {
        for character in run.text.utf8 {
            for glyphRow in 0..<BitmapFont.height {
                let bits = BitmapFont.rowBits(character, row: glyphRow)
                for bit in 0..<8 {
                    let value = bits & (0x80 >> UInt8(bit)) != 0 ? run.ink : run.paper
                    for sy in 0..<scale {
                        for sx in 0..<scale {
                            let px = (column * 8 + bit) * scale + sx, py = top + glyphRow * scale + sy
                            guard px < width, py < height else { continue }
                            let o = (py * width + px) * 3
                            pixels[o] = value
                            pixels[o + 1] = value
                            pixels[o + 2] = value
                        }
                    }
                }
            }
            column += 1
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels).map { Frame(image: $0) }
}

let consoleScript = [
    "root",
    "Password: ",
    "Last login: Thu Dec  3 09:14:27 2026 from 192.168.1.20",
    "root@nanokvm-target:~# uname -a",
    "Linux nanokvm-target 6.1.0-18-amd64 #1 SMP Debian x86_64 GNU/Linux",
    "root@nanokvm-target:~# ls /etc/systemd",
    "journald.conf logind.conf network system user",
    "root@nanokvm-target:~# echo The quick brown fox jumps over 13 lazy dogs!",
]

@Suite("Vision: OCR of the screen", .serialized, .timeLimit(.minutes(1)))
struct VisionOCRTests {
    @Test("OCR of the console scene: CER ≤ 1% against the simulator's console text", arguments: [(1024, 768), (1280, 720), (1920, 1080)])
    func consoleCER(size: (Int, Int)) async throws {
        try await withDevice(.current, configure: { $0.width = size.0; $0.height = size.1 }) { simulator, client in
            try await client.hid.paste(consoleScript.joined(separator: "\n"))
            let tail = "lazy dogs!"
            for _ in 0..<100 where !simulator.consoleText.contains(tail) { try await Task.sleep(for: .milliseconds(20)) }
            _ = try await client.frames.waitStill(seconds: 0.3, timeout: .seconds(5))
            let frame = try await client.frames.screenshot()
            let truth = simulator.consoleText
            let reader = try ScreenTextReader()
            let start = Date()
            let result = try await reader.read(frame)
            let seconds = Date().timeIntervalSince(start)
            let cer = characterErrorRate(read: result.text, truth: truth)
            print("console \(size.0)x\(size.1): CER \(String(format: "%.4f", cer)) in \(String(format: "%.2f", seconds)) s, \(result.lines.count) lines")
            // Goal of issue 13: 1%. Measured 0.77% at every size (3 of 388: the narrow v of the
            // 8×16 bitmap font read as y, a space before ~, the cursor read as _).
            #expect(cer <= 0.01, "read:\n\(result.text)\n---- truth:\n\(truth)")
            // Boxes: the word "uname" lies on the fourth text line of the console, inside its row.
            let word = try #require(result.words.first { $0.text == "uname" })
            let row = (word.rect.y + word.rect.height / 2) / BitmapFont.height
            #expect(row == 5, "\(word)")  // banner, blank, login line, Password, Last login, prompt
        }
    }

    @Test("Dark on light and light on dark, at 1:1 and doubled glyphs, read the same")
    func polarityAndScale() async throws {
        let lines = ["Boot Menu  Advanced  Security", "1. UEFI: Debian GNU/Linux", "Press F10 to save and exit"]
        let reader = try ScreenTextReader()
        for (ink, paper, scale) in [(UInt8(230), UInt8(20), 1), (UInt8(10), UInt8(240), 1), (UInt8(250), UInt8(40), 2)] {
            let frame = try #require(renderedFrame(lines, width: 800, height: 200, scale: scale, ink: ink, paper: paper))
            reader.reset()
            let result = try await reader.read(frame)
            let cer = characterErrorRate(read: result.text, truth: lines.joined(separator: "\n"))
            #expect(cer <= 0.03, "ink \(ink) paper \(paper) scale \(scale): \(result.text)")
        }
    }

    @Test("A line on several backgrounds: each part is read with its own polarity", arguments: [1, 2])
    func mixedBackgrounds(scale: Int) async throws {
        // A tab row: the selected tab dark on light grey, the others light on blue, on a black
        // frame; then a menu entry highlighted over the whole width of a box.
        let tabs = try #require(renderedRow(
            [(" Main ", 20, 170), ("  Advanced  ", 250, 25), (" Boot ", 20, 170), ("  Security  ", 250, 25)],
            width: 700 * scale, height: 60 * scale, frameLevel: 0, scale: scale))
        let page = TextPage(try GrayImage(frame: tabs))
        #expect(page.bands.count == 1)
        let polarities = page.bands.first?.segments.map(\.lightText) ?? []
        #expect(polarities == [false, true, false, true], "\(page.bands)")
        let read = try await ScreenTextReader().read(tabs)
        #expect(normalizedText(read.text) == "Main Advanced Boot Security", "\(read.text)")
        let entry = try #require(renderedRow(
            [("*Debian GNU/Linux" + String(repeating: " ", count: 40), 0, 170)], width: 640 * scale, height: 60 * scale, frameLevel: 0,
            scale: scale))
        let highlighted = try await ScreenTextReader().read(entry)
        #expect(normalizedText(highlighted.text) == "*Debian GNU/Linux", "\(highlighted.text)")
    }

    @Test("Incremental: a new line on an unchanged screen reads only its band")
    func incremental() async throws {
        let reader = try ScreenTextReader()
        let before = try #require(renderedFrame(Array(consoleScript.prefix(5)), width: 1280, height: 720, ink: 208, paper: 18))
        let first = try await reader.read(before)
        #expect(first.recognizedBands == 5 && first.reusedBands == 0)
        let after = try #require(renderedFrame(Array(consoleScript.prefix(6)), width: 1280, height: 720, ink: 208, paper: 18))
        let second = try await reader.read(after)
        #expect(second.recognizedBands == 1 && second.reusedBands == 5, "\(second.recognizedBands) read, \(second.reusedBands) reused")
        #expect(second.text.contains("ls /etc/systemd"))
        // The same frame again: nothing is read.
        let third = try await reader.read(after)
        #expect(third.recognizedBands == 0)
        #expect(third.text == second.text)
    }

    @Test("Modes and areas: a line in an area, a word, a block")
    func modesAndAreas() async throws {
        let frame = try #require(renderedFrame(["Install", "Graphical install", "Advanced options"], width: 640, height: 120, ink: 240, paper: 30))
        let area = try ScreenArea(x: 0, y: 34.0 / 120, width: 0.5, height: 20.0 / 120)
        let line = try await ScreenTextReader(options: OCROptions(area: area, mode: .line)).read(frame)
        #expect(line.text == "Graphical install")
        #expect(line.words.allSatisfy { $0.rect.y >= 34 && $0.rect.maxY <= 54 }, "\(line.words)")
        let block = try await ScreenTextReader(options: OCROptions(mode: .block)).read(frame)
        #expect(normalizedText(block.text) == "Install\nGraphical install\nAdvanced options")
        let wordArea = try ScreenArea(x: 0, y: 0, width: 0.3, height: 0.25)
        let word = try await ScreenTextReader(options: OCROptions(area: wordArea, mode: .word)).read(frame)
        #expect(word.words.count == 1 && editDistance(word.text, "Install") <= 2, "\(word.text) \(word.words)")
    }

    @Test("A language that is not installed names its Debian package")
    func missingLanguage() async throws {
        let error = await expectError(.usage) { try ScreenTextReader(options: OCROptions(language: "xyz")) }
        #expect(error?.message.contains("tesseract-ocr-xyz") == true, "\(String(describing: error))")
        await expectError(.usage) { try ScreenTextReader(options: OCROptions(language: "../etc")) }
    }

    @Test("TextWaiter: a line typed during the wait is read; a timeout quotes the last text")
    func waiter() async throws {
        try await withDevice(.current) { simulator, client in
            _ = try await client.frames.screenshot()
            let waiter = try TextWaiter(source: client.frames, reader: try ScreenTextReader(), timeout: 10, wanted: "'ready'")
            defer { waiter.close() }
            let typing = Task {
                try await Task.sleep(for: .milliseconds(500))
                try await client.hid.paste("system ready")
            }
            var found = false
            while let pass = try await waiter.next() {
                if pass.result.text.contains("system ready") {
                    found = true
                    break
                }
            }
            try await typing.value
            #expect(found)
            let short = try TextWaiter(source: client.frames, reader: try ScreenTextReader(), timeout: 0.8, wanted: "'nothing here'")
            defer { short.close() }
            let error = await expectError(.timeout) { while try await short.next() != nil {} }
            #expect(error?.message.contains("system ready") == true, "\(String(describing: error))")
            #expect(simulator.consoleText.contains("system ready"))
        }
    }
}
