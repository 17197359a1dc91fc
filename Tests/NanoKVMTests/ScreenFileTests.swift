// Screen pieces without a device: areas, frames from bytes, diff, PNG and AVI files (checked
// byte by byte and with ffprobe/ffmpeg when installed), the terminal preview.

import Foundation
import NanoKVM
import Testing

/// A width×height image: a horizontal red gradient, a vertical green one, blue from `seed`.
func testImage(width: Int, height: Int, seed: UInt8 = 0) -> RGBImage? {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let o = (y * width + x) * 3
            pixels[o] = UInt8(x * 255 / max(width - 1, 1))
            pixels[o + 1] = UInt8(y * 255 / max(height - 1, 1))
            pixels[o + 2] = seed &+ UInt8((x ^ y) & 0x3F)
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

func littleUInt32(_ bytes: [UInt8], _ offset: Int) -> Int {
    Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
}

func bigUInt32(_ bytes: [UInt8], _ offset: Int) -> Int {
    Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
}

func fourCC(_ bytes: [UInt8], _ offset: Int) -> String {
    String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self)
}

@Suite("Screen: frames and files (offline)", .timeLimit(.minutes(1)))
struct ScreenTestsOffline {
    @Test("Areas: fractions are checked; pixel rectangles stay inside the image")
    func areas() throws {
        for (x, y, w, h) in [(-0.1, 0.0, 0.5, 0.5), (0.0, 0.0, 0.0, 0.5), (0.5, 0.0, 0.6, 0.5), (1.0, 0.0, 0.1, 0.1), (Double.nan, 0, 1, 1)] {
            #expect(throws: NanoKVMError.self) { try ScreenArea(x: x, y: y, width: w, height: h) }
            do {
                _ = try ScreenArea(x: x, y: y, width: w, height: h)
            } catch {
                #expect(error.kind == .usage)
            }
        }
        let area = try ScreenArea(x: 0.25, y: 0.5, width: 0.5, height: 0.5)
        #expect(area.pixelRect(imageWidth: 1280, imageHeight: 720) == (320, 360, 640, 360))
        // A tiny area is still one pixel, inside the image.
        let tiny = try ScreenArea(x: 0.9999, y: 0.9999, width: 0.00001, height: 0.00001)
        let rect = tiny.pixelRect(imageWidth: 100, imageHeight: 50)
        #expect(rect == (99, 49, 1, 1))
        #expect(ScreenArea.full.pixelRect(imageWidth: 7, imageHeight: 3) == (0, 0, 7, 3))
        // Rounding slack at the right edge is accepted.
        _ = try ScreenArea(x: 0.7, y: 0.1, width: 0.30000000001, height: 0.9)
    }

    @Test("Frames from bytes: size from the header alone; bad bytes are protocol errors")
    func frames() throws {
        let image = try #require(testImage(width: 64, height: 48))
        let jpeg = try JPEGCodec.encode(image, quality: 90)
        let frame = try Frame(jpeg: jpeg, time: 12.5)
        #expect(frame.width == 64 && frame.height == 48 && frame.time == 12.5 && frame.size == jpeg.count)
        #expect(!frame.isDecoded)
        for bad in [[], [0xFF, 0xD8], [0x89, 0x50, 0x4E, 0x47, 0, 0, 0, 0], Array(jpeg.prefix(20)), Array(repeating: 0xFF, count: 100)] as [[UInt8]] {
            do {
                _ = try Frame(jpeg: bad)
                Issue.record("accepted \(bad.count) bad bytes")
            } catch {
                #expect(error.kind == .protocol)
            }
        }
        // A header that reads but data that does not decode: protocol on first use of pixels.
        var broken = Array(jpeg.prefix(jpeg.count / 3))
        for i in 0..<broken.count where i > 700 { broken[i] = 0xFF }
        broken += [0xFF, 0xD9]
        if let frame = try? Frame(jpeg: broken) {
            do {
                _ = try frame.pixels()
            } catch {
                #expect(error.kind == .protocol)
            }
        }
        // Decoding is cached and matches what was encoded, roughly.
        let pixels = try frame.pixels()
        #expect(frame.isDecoded)
        let (r, g, _) = try frame.pixel(x: 63, y: 47)
        #expect(r > 230 && g > 230)
        #expect(pixels.width == 64)
    }

    @Test("diff: identical bytes without decoding; sizes; area; tolerance")
    func diff() throws {
        let image = try #require(testImage(width: 80, height: 40))
        let jpeg = try JPEGCodec.encode(image, quality: 95)
        let a = try Frame(jpeg: jpeg)
        let b = try Frame(jpeg: jpeg)
        #expect(try a.diff(b) == 0)
        #expect(!a.isDecoded && !b.isDecoded)
        // Change a 10×10 square at the top left.
        var pixels = image.pixels
        for y in 0..<10 { for x in 0..<10 { let o = (y * 80 + x) * 3; pixels[o] = 255 &- pixels[o]; pixels[o + 1] = 0; pixels[o + 2] = 255 } }
        let changed = Frame(image: try #require(RGBImage(width: 80, height: 40, pixels: pixels)))
        let original = Frame(image: image)
        #expect(try changed.diff(original, radius: 0) == 100.0 / 3200.0)
        #expect(try changed.diff(original) == 14.0 * 14.0 / 3200.0)  // 4 px around the square, clipped at the corner
        #expect(try changed.diff(original, area: ScreenArea(x: 0.5, y: 0, width: 0.5, height: 1)) == 0)
        #expect(try changed.diff(original, area: ScreenArea(x: 0, y: 0, width: 0.125, height: 0.25)) == 1)
        #expect(try changed.diff(original, tolerance: 255) == 0)
        let other = Frame(image: try #require(testImage(width: 40, height: 40)))
        #expect(try other.diff(original) == 1)
    }

    @Test("crop by fractions; the full area is the frame itself")
    func crop() throws {
        let image = try #require(testImage(width: 100, height: 60, seed: 7))
        let frame = Frame(image: image, time: 3)
        let part = try frame.crop(ScreenArea(x: 0.1, y: 0.5, width: 0.2, height: 0.5))
        #expect(part.width == 20 && part.height == 30 && part.time == 3)
        for (x, y) in [(0, 0), (19, 29), (5, 11)] {
            #expect(try part.pixel(x: x, y: y) == frame.pixel(x: 10 + x, y: 30 + y))
        }
        #expect(try frame.crop(.full).width == 100)
    }

    @Test("PNG: signature, chunks with valid CRCs, and ffmpeg reads back the exact pixels")
    func png() throws {
        let image = try #require(testImage(width: 123, height: 45, seed: 99))
        let png = try PNGWriter.encode(image)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var offset = 8
        var types: [String] = []
        while offset < png.count {
            let length = bigUInt32(png, offset)
            types.append(fourCC(png, offset + 4))
            offset += 12 + length
        }
        #expect(offset == png.count)
        #expect(types == ["IHDR", "IDAT", "IEND"])
        #expect(bigUInt32(png, 16) == 123 && bigUInt32(png, 20) == 45)
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let frame = Frame(image: image)
        try frame.save(to: dir + "/t.png")
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/t.png"))) == png)
        if let decoded = try runTool("ffmpeg", ["-v", "error", "-i", dir + "/t.png", "-f", "rawvideo", "-pix_fmt", "rgb24", dir + "/t.rgb"]) {
            #expect(decoded.status == 0, "\(decoded.stderr)")
            #expect(try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/t.rgb"))) == image.pixels)
        }
        // Saving: extension checked; unwritable paths are usage errors.
        for bad in [dir + "/t.gif", dir + "/t", dir + "/missing/t.png"] {
            do {
                try frame.save(to: bad)
                Issue.record("saved \(bad)")
            } catch {
                #expect(error.kind == .usage)
            }
        }
        // A pixel frame saved as .jpg is encoded and reads back at its size.
        try frame.save(to: dir + "/t.jpeg")
        let jpeg = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/t.jpeg")))
        #expect(JPEGCodec.dimensions(jpeg)?.width == 123)
    }

    @Test("AVI: RIFF layout, headers patched with the recorded rate, idx1 points at every chunk")
    func avi() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.avi"
        let writer = try AVIWriter(path: path, width: 64, height: 48)
        var sizes: [Int] = []
        for seed in 0..<5 {
            let jpeg = try JPEGCodec.encode(try #require(testImage(width: 64, height: 48, seed: UInt8(seed * 40))), quality: 80)
            sizes.append(jpeg.count)
            try writer.append(jpeg)
        }
        try writer.finish(seconds: 0.5)
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(fourCC(bytes, 0) == "RIFF" && fourCC(bytes, 8) == "AVI ")
        #expect(littleUInt32(bytes, 4) == bytes.count - 8)
        #expect(fourCC(bytes, 12) == "LIST" && fourCC(bytes, 20) == "hdrl" && fourCC(bytes, 24) == "avih")
        #expect(littleUInt32(bytes, 32) == 100_000)  // µs per frame at 10 fps
        #expect(littleUInt32(bytes, 32 + 16) == 5)  // total frames
        #expect(littleUInt32(bytes, 32 + 32) == 64 && littleUInt32(bytes, 32 + 36) == 48)
        #expect(fourCC(bytes, 100) == "strh" && fourCC(bytes, 108) == "vids" && fourCC(bytes, 112) == "MJPG")
        #expect(littleUInt32(bytes, 108 + 20) == 1000 && littleUInt32(bytes, 108 + 24) == 10_000)  // scale, rate
        #expect(littleUInt32(bytes, 108 + 32) == 5)  // length
        #expect(fourCC(bytes, 164) == "strf" && fourCC(bytes, 172 + 16) == "MJPG")
        // movi list and its chunks.
        let movi = try #require((0..<(bytes.count - 4)).first { fourCC(bytes, $0) == "movi" })
        #expect(fourCC(bytes, movi - 8) == "LIST")
        let moviSize = littleUInt32(bytes, movi - 4)
        let idx1 = movi + moviSize
        #expect(fourCC(bytes, idx1) == "idx1")
        #expect(littleUInt32(bytes, idx1 + 4) == 5 * 16)
        #expect(idx1 + 8 + 80 == bytes.count)
        for i in 0..<5 {
            let entry = idx1 + 8 + i * 16
            #expect(fourCC(bytes, entry) == "00dc")
            #expect(littleUInt32(bytes, entry + 4) == 0x10)
            let chunk = movi + littleUInt32(bytes, entry + 8)
            #expect(fourCC(bytes, chunk) == "00dc")
            #expect(littleUInt32(bytes, chunk + 4) == sizes[i])
            #expect(littleUInt32(bytes, entry + 12) == sizes[i])
            #expect(bytes[chunk + 8] == 0xFF && bytes[chunk + 9] == 0xD8)
        }
        if let probe = try runTool(
            "ffprobe", ["-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames,r_frame_rate,codec_name", "-of", "csv=p=0", path])
        {
            #expect(probe.status == 0 && probe.stderr.isEmpty, "\(probe.stderr)")
            #expect(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "mjpeg,10/1,5")
        }
        // Finished writers refuse more frames; a bad path is a usage error.
        #expect(throws: NanoKVMError.self) { try writer.append([0xFF, 0xD8, 0xFF, 0xD9]) }
        #expect(throws: NanoKVMError.self) { try AVIWriter(path: dir + "/no/dir/x.avi", width: 10, height: 10) }
    }

    @Test("Terminal preview: size keeps the aspect ratio; half blocks carry upper and lower pixels")
    func preview() throws {
        #expect(TerminalPreview.cells(width: 1280, height: 720, columns: 80) == (80, 23))
        #expect(TerminalPreview.cells(width: 1920, height: 1080, columns: 120, maxRows: 20) == (71, 20))
        #expect(TerminalPreview.cells(width: 4, height: 4, columns: 100) == (4, 2))
        // 2×4 pixels: red over green in column 0, blue over white in column 1, twice.
        let red: [UInt8] = [255, 0, 0], green: [UInt8] = [0, 255, 0], blue: [UInt8] = [0, 0, 255], white: [UInt8] = [255, 255, 255]
        let pixels = red + blue + green + white + red + blue + green + white
        let frame = Frame(image: try #require(RGBImage(width: 2, height: 4, pixels: pixels)))
        let text = try TerminalPreview.render(frame, columns: 2)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty)
        #expect(lines[0] == "\u{1B}[38;2;255;0;0m\u{1B}[48;2;0;255;0m▀\u{1B}[38;2;0;0;255m\u{1B}[48;2;255;255;255m▀\u{1B}[0m")
        // Area averaging: 2×2 of black and white is mid grey.
        let checker = Frame(image: try #require(RGBImage(width: 2, height: 2, pixels: [0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0])))
        let grey = try TerminalPreview.render(checker, columns: 1)
        #expect(grey.hasPrefix("\u{1B}[38;2;127;127;127m"))
        #expect(throws: NanoKVMError.self) { try TerminalPreview.render(frame, columns: 0) }
    }
}
