// Self-changing regions: a frame counter and a clock we draw ourselves in a corner are learned
// and ignored; typed text elsewhere still counts; `ignore` areas never count.

@testable import NanoKVM
import Testing

/// A console-like frame: `lines` at the top left and `corner` at the top right.
func cornerFrame(_ lines: [String], corner: String, time: Double) throws -> Frame {
    let base = try #require(renderedFrame(lines, width: 640, height: 360, ink: 208, paper: 18))
    var pixels = try base.pixels().pixels
    let clock = try #require(renderedFrame([corner], width: 120, height: 40, ink: 208, paper: 18, x: 4, y: 4))
    let clockPixels = try clock.pixels().pixels
    for y in 0..<40 {
        for x in 0..<120 {
            let o = (y * 640 + 520 + x) * 3, c = (y * 120 + x) * 3
            pixels[o] = clockPixels[c]; pixels[o + 1] = clockPixels[c + 1]; pixels[o + 2] = clockPixels[c + 2]
        }
    }
    return Frame(image: try #require(RGBImage(width: 640, height: 360, pixels: pixels)), time: time)
}

@Suite("Vision: waits that ignore clocks", .timeLimit(.minutes(1)))
struct VisionMotionTests {
    @Test("A frame counter and a ticking clock are learned; typing is not; the mask hides only them", arguments: ["counter", "clock"])
    func learning(kind: String) throws {
        // 3.5 s of history at 4 frames a second; the text line gets one character at 1.0 s.
        var frames: [Frame] = []
        for i in 0..<14 {
            let time = Double(i) * 0.25
            let corner = kind == "counter" ? "frame \(i)" : "12:00:\(String(format: "%02d", Int(time)))"
            frames.append(try cornerFrame(["login: " + (time >= 1 ? "r" : "")], corner: corner, time: time))
        }
        var mask = MotionMask(width: 640, height: 360)
        let learned = mask.learn(from: frames)
        #expect(learned)
        let regions = mask.learnedRegions
        #expect(!regions.isEmpty && regions.allSatisfy { $0.x >= 512 && $0.maxY <= 48 }, "\(regions)")
        // The corner changes: hidden. A new word on the text line: seen.
        let reference = try frames[13].pixels()
        let ticked = try cornerFrame(["login: r"], corner: kind == "counter" ? "frame 99" : "12:00:07", time: 4)
        let typed = try cornerFrame(["login: root"], corner: "frame 99", time: 4)
        let hidden = Frame(image: mask.masked(try ticked.pixels(), with: reference))
        #expect(try hidden.diff(Frame(image: reference)) == 0)
        let seen = Frame(image: mask.masked(try typed.pixels(), with: reference))
        #expect(try seen.diff(Frame(image: reference)) > Frame.defaultChangeThreshold)
    }

    @Test("Two clocks on a small screen (firmware setup at 640x480) are both learned whole, the line above them is not")
    func twoClocks() throws {
        // A title line with the date and time, and a "System Time" field right under a "System
        // Date" one, text 8x16 packed as the simulated firmware draws it at 640x480 (lines
        // straddle the 16-pixel cells, two lines share a row of cells). Only the seconds change
        // in the history; then the minutes and hours tick.
        func setup(_ time: String, date: String = "12/04/2026") throws -> Frame {
            try #require(renderedFrame([
                "NanoKVM Setup Utility                       Fri \(date) \(time)", "", "Main  Advanced  Boot  Exit", "",
                "System Date      [\(date)]", "System Time      [\(time)]", "", "Total Memory     16384 MB",
            ], width: 640, height: 480, ink: 208, paper: 18, x: 40, y: 41, pitch: 16))
        }
        var frames: [Frame] = []
        for i in 0..<14 {
            let f = try setup("21:19:\(String(format: "%02d", 30 + i / 4))")
            frames.append(Frame(image: try f.pixels(), time: Double(i) * 0.25))
        }
        var mask = MotionMask(width: 640, height: 480)
        let learned = mask.learn(from: frames)
        #expect(learned)
        let reference = try frames[13].pixels()
        let ticked = Frame(image: mask.masked(try setup("22:00:00").pixels(), with: reference))
        #expect(try ticked.diff(Frame(image: reference)) == 0, "\(mask.learnedRegions)")
        // The date line right above the time field is text of its own: a change there is seen.
        let redated = Frame(image: mask.masked(try setup("21:19:33", date: "12/05/2026").pixels(), with: reference))
        #expect(try redated.diff(Frame(image: reference)) > 0, "\(mask.learnedRegions)")
    }

    @Test("Ignore areas are masked; a screen changing everywhere learns nothing")
    func ignoreAndActivity() throws {
        let mask = MotionMask(width: 640, height: 360, ignore: [try ScreenArea(x: 0, y: 0, width: 0.5, height: 0.1)])
        #expect(mask.regions == [PixelRect(x: 0, y: 0, width: 320, height: 48)])
        var busy = MotionMask(width: 640, height: 360)
        let frames = try (0..<14).map { i in
            try cornerFrame((0..<12).map { "progress \(i * 7 + $0) of a long installation step" }, corner: "x", time: Double(i) * 0.25)
        }
        let learnedBusy = busy.learn(from: frames)
        #expect(!learnedBusy)
        #expect(busy.isEmpty)
    }
}
