// openQA needles: save/load round trip, matching on JPEG noise, a moved screen, a one-word
// difference, an exclude area, a click point, and the usage errors naming the file.

import Foundation
@testable import NanoKVM
import Testing

func jpegFrame(_ frame: Frame, quality: Int = 75) throws -> Frame {
    try Frame(jpeg: try JPEGCodec.encode(try frame.pixels(), quality: quality))
}

let menuLines = ["Main  Advanced  Boot  Security  Exit", "", "Boot Option #1   [UEFI: Debian]", "Boot Option #2   [Network PXE]", "", "System Time      [09:14:27]"]

@Suite("Vision: openQA needles", .serialized, .timeLimit(.minutes(1)))
struct VisionNeedleTests {
    let directory: String = {
        let path = NSTemporaryDirectory() + "kvmlua-needles-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    func makeNeedle() throws -> Needle {
        // Made from a JPEG frame, as a needle saved from dev:screenshot() is.
        let frame = try jpegFrame(try #require(renderedFrame(menuLines, width: 640, height: 200, ink: 220, paper: 24, x: 40, y: 20)), quality: 80)
        // Area: the Boot Option lines and the clock line; the clock's digits are excluded.
        let areas = [
            NeedleArea(rect: PixelRect(x: 30, y: 50, width: 300, height: 80), match: 95, margin: 20, clickPoint: (12, 20)),
            NeedleArea(rect: PixelRect(x: 170, y: 105, width: 100, height: 25), kind: .exclude),
        ]
        return try Needle.save(frame, to: directory + "/boot-menu", areas: areas, tags: ["bios", "boot"])
    }

    @Test("Save writes openQA's JSON + PNG; load reads them back")
    func roundTrip() throws {
        let saved = try makeNeedle()
        let json = try String(contentsOfFile: directory + "/boot-menu.json", encoding: .utf8)
        let parsed = try JSONValue.parse(json)
        let area = try #require(parsed["area"]?[0])
        #expect(area["xpos"]?.intValue == 30 && area["width"]?.intValue == 300 && area["type"]?.stringValue == "match")
        #expect(area["match"]?.intValue == 95 && area["margin"]?.intValue == 20)
        #expect(area["click_point"]?["xpos"]?.doubleValue == 12)
        #expect(parsed["area"]?[1]?["type"]?.stringValue == "exclude")
        #expect(parsed["tags"]?.arrayValue?.compactMap(\.stringValue) == ["bios", "boot"])
        let loaded = try Needle.load(directory + "/boot-menu.json")
        #expect(loaded.count == 1 && loaded[0].areas == saved.areas && loaded[0].tags == saved.tags && loaded[0].width == 640)
        // A directory loads recursively.
        try FileManager.default.createDirectory(atPath: directory + "/sub", withIntermediateDirectories: true)
        _ = try Needle.save(try #require(renderedFrame(["x"], width: 64, height: 64, ink: 255, paper: 0)), to: directory + "/sub/other",
                            areas: [NeedleArea(rect: PixelRect(x: 0, y: 0, width: 32, height: 32))], tags: ["other"])
        #expect(try Needle.load(directory).map(\.name) == ["boot-menu", "other"])
    }

    @Test("Matches the same screen through JPEG noise, and a moved one within the margin; not a one-word difference")
    func matching() throws {
        let needle = try makeNeedle()
        for quality in [50, 75, 95] {
            let same = try jpegFrame(try #require(renderedFrame(menuLines, width: 640, height: 200, ink: 220, paper: 24, x: 40, y: 20)), quality: quality)
            let result = needle.search(try GrayImage(frame: same))
            #expect(result.matched && result.similarity >= 99, "quality \(quality): \(result.similarity)")
            #expect(result.rect == PixelRect(x: 30, y: 50, width: 300, height: 80))
            #expect(result.clickPoint.x == 42 && result.clickPoint.y == 70)
        }
        // Moved by (13, 7): found there, click point moved with it.
        let moved = try jpegFrame(try #require(renderedFrame(menuLines, width: 640, height: 200, ink: 220, paper: 24, x: 53, y: 27)))
        let found = needle.search(try GrayImage(frame: moved))
        #expect(found.matched && found.rect.x == 43 && found.rect.y == 57, "\(found.rect) \(found.similarity)")
        // Moved far beyond the margin: still found by the whole-screen search.
        let far = try jpegFrame(try #require(renderedFrame(menuLines, width: 640, height: 200, ink: 220, paper: 24, x: 200, y: 60)))
        let farResult = needle.search(try GrayImage(frame: far))
        #expect(farResult.matched && farResult.rect.x == 190 && farResult.rect.y == 90, "\(farResult.rect)")
        // One word different inside the area.
        var changed = menuLines
        changed[3] = "Boot Option #2   [Network HTTP]"
        let differs = needle.search(try GrayImage(frame: try jpegFrame(try #require(renderedFrame(changed, width: 640, height: 200, ink: 220, paper: 24, x: 40, y: 20)))))
        #expect(!differs.matched && differs.similarity < 80, "\(differs.similarity)")
        // A change inside the exclude area (the clock) does not matter.
        var ticked = menuLines
        ticked[5] = "System Time      [11:52:08]"
        let clock = needle.search(try GrayImage(frame: try jpegFrame(try #require(renderedFrame(ticked, width: 640, height: 200, ink: 220, paper: 24, x: 40, y: 20)))))
        #expect(clock.matched, "\(clock.similarity)")
        // A screen of another size does not match and says why.
        let other = needle.search(GrayImage(width: 320, height: 200))
        #expect(!other.matched && other.note?.contains("640x200") == true)
    }

    @Test("A one-line text needle is found anywhere on a screen of similar lines, outside its margin")
    func lineNeedleAnywhere() throws {
        // A short, wide area (one line of a console: 8x16 text) is searched on a level halved 8
        // times across and twice down; lines of the same font and length look alike there.
        let lines = (0..<30).map { String(format: "root@host:~# ls /var/log/unit-%02d", $0) }
        let width = 1280, height = 720
        let original = try jpegFrame(try #require(renderedFrame(lines, width: width, height: height, ink: 200, paper: 20, x: 8, y: 8, pitch: 22)))
        // Line 3 (y = 8 + 3·22): its text and 4 px around.
        let area = PixelRect(x: 4, y: 8 + 3 * 22 - 4, width: 34 * 8 + 8, height: 24)
        let needle = try Needle.save(original, to: directory + "/line", areas: [NeedleArea(rect: area)], tags: [])
        // The same line drawn 20 lines further down and 300 px to the right, among other lines.
        var moved = lines
        moved[3] = "root@host:~# ls /var/log/unit-xx"
        let far = (0..<30).map { $0 == 23 ? "                                     root@host:~# ls /var/log/unit-03" : moved[$0] }
        let frame = try jpegFrame(try #require(renderedFrame(far, width: width, height: height, ink: 200, paper: 20, x: 8, y: 8, pitch: 22)))
        let result = needle.search(try GrayImage(frame: frame))
        #expect(result.matched, "\(result.similarity)")
        #expect(result.rect.x == area.x + 37 * 8 && result.rect.y == area.y + 20 * 22, "\(result.rect)")
        // Where the line is gone (changed into unit-xx everywhere) it does not match.
        let gone = try jpegFrame(try #require(renderedFrame(moved, width: width, height: height, ink: 200, paper: 20, x: 8, y: 8, pitch: 22)))
        #expect(!needle.search(try GrayImage(frame: gone)).matched)
    }

    @Test("Malformed JSON and a PNG of the wrong size are usage errors naming the file")
    func errors() async throws {
        _ = try makeNeedle()
        let bad = directory + "/broken.json"
        try "{\"area\": [ {\"xpos\": 1,".write(toFile: bad, atomically: true, encoding: .utf8)
        let error = await expectError(.usage) { try Needle.load(bad) }
        #expect(error?.message.contains("broken.json") == true && error?.message.contains("malformed JSON") == true, "\(String(describing: error))")
        // The boot-menu JSON with a PNG that is too small for its areas.
        try FileManager.default.copyItem(atPath: directory + "/boot-menu.json", toPath: directory + "/small.json")
        try PNGWriter.encode(try #require(RGBImage(width: 100, height: 50, pixels: [UInt8](repeating: 0, count: 15000)))).withUnsafeBufferPointer {
            try Data(buffer: $0).write(to: URL(fileURLWithPath: directory + "/small.png"))
        }
        let size = await expectError(.usage) { try Needle.load(directory + "/small.json") }
        #expect(size?.message.contains("small.png") == true && size?.message.contains("100x50") == true, "\(String(describing: size))")
        let missing = await expectError(.usage) { try Needle.load(directory + "/absent.json") }
        #expect(missing?.message.contains("absent.json") == true)
        try "not a png".write(toFile: directory + "/garbage.png", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: directory + "/boot-menu.json", toPath: directory + "/garbage.json")
        let garbage = await expectError(.usage) { try Needle.load(directory + "/garbage.json") }
        #expect(garbage?.message.contains("garbage.png") == true)
    }

    @Test("PNG reader: our own PNGs (RGB) decode to the same pixels")
    func pngRoundTrip() throws {
        let frame = try #require(renderedFrame(menuLines, width: 320, height: 120, ink: 200, paper: 30))
        let image = try frame.pixels()
        #expect(try PNGReader.decode(try PNGWriter.encode(image)) == image)
    }

    @Test("waitNeedles on the simulator: typed text that the needle shows is found; a timeout names the best similarity")
    func waitOnSimulator() async throws {
        try await withDevice(.current, configure: { $0.width = 640; $0.height = 360 }) { simulator, client in
            let before = try await client.frames.screenshot()
            // The needle: the banner line of the console as it looks now.
            let needle = try Needle.save(before, to: directory + "/banner", areas: [NeedleArea(rect: PixelRect(x: 0, y: 0, width: 344, height: 48))], tags: ["console"])
            let (match, _) = try await client.frames.waitNeedles([needle], timeout: .seconds(5))

            #expect(match.similarity >= 99 && match.rect.x == 0 && match.rect.y == 0)
            // A needle of a line that is not there yet: typed during the wait.
            let future = try #require(renderedFrame(["NanoKVM simulated host (kvmlua nanokvm-sim)", "", "nanokvm-sim login: admin"], width: before.width, height: before.height, ink: 0xD0, paper: 0x12, x: 0, y: 0, pitch: 16))
            let wanted = try Needle(name: "admin", path: directory + "/admin.json", image: try future.pixels(),
                                    areas: [NeedleArea(rect: PixelRect(x: 0, y: 0, width: 192, height: 48))], tags: [], properties: [])
            let typing = Task {
                try await Task.sleep(for: .milliseconds(400))
                try await client.hid.paste("admin")
            }
            let start = Date()
            let (typed, frame) = try await client.frames.waitNeedles([wanted], timeout: .seconds(10))
            try await typing.value
            #expect(typed.matched && frame.time > before.time && Date().timeIntervalSince(start) < 5)
            #expect(simulator.consoleText.contains("admin"))
            let other = try #require(renderedFrame(["NanoKVM simulated host (kvmlua nanokvm-sim)", "", "nanokvm-sim login: qqqqq"], width: before.width, height: before.height, ink: 0xD0, paper: 0x12, x: 0, y: 0, pitch: 16))
            let never = try Needle(name: "never", path: directory + "/never.json", image: try other.pixels(),
                                   areas: [NeedleArea(rect: PixelRect(x: 0, y: 0, width: 192, height: 48))], tags: [], properties: [])
            let error = await expectError(.timeout) { try await client.frames.waitNeedles([never], timeout: .milliseconds(600)) }
            #expect(error?.message.contains("never: best") == true && error?.message.contains("needs 96") == true, "\(String(describing: error))")
        }
    }
}
