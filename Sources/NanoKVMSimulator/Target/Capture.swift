// The HDMI capture side: renders the virtual host's console and pointer into an RGB frame,
// encodes it with libturbojpeg, and runs the one capture loop that all MJPEG viewers share
// (started by the first viewer, stopped after the last, ticking at the configured fps).

internal import CTurboJPEG
import Foundation
import Synchronization

/// Draws the console into RGB pixels.
enum ScreenRenderer {
    static let foreground: (UInt8, UInt8, UInt8) = (0xD0, 0xD0, 0xD0)
    /// A grey background: one byte value for all channels, so the buffer is a single memset
    /// (debug builds run the simulator in every test; per-pixel loops there are slow).
    static let backgroundLevel: UInt8 = 0x12

    static func render(console: TextConsole, pointer: (x: Int, y: Int), width: Int, height: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: backgroundLevel, count: width * height * 3)
        pixels.withUnsafeMutableBufferPointer { buffer in
            for (row, line) in console.lines.enumerated() {
                for (column, character) in line.enumerated() where character != " " {
                    let code = character.asciiValue ?? UInt8(ascii: "?")
                    drawGlyph(code, x: column * BitmapFont.width, y: row * BitmapFont.height, into: buffer, width: width, height: height)
                }
            }
            // Cursor: a steady underline (no blinking, so a static screen stays static).
            let cursorX = console.cursorColumn * BitmapFont.width
            let cursorY = console.cursorRow * BitmapFont.height + BitmapFont.height - 2
            fill(x: cursorX, y: cursorY, w: BitmapFont.width, h: 2, color: foreground, into: buffer, width: width, height: height)
            drawPointer(at: pointer, into: buffer, width: width, height: height)
        }
        return pixels
    }

    private static func fill(
        x: Int, y: Int, w: Int, h: Int, color: (UInt8, UInt8, UInt8), into buffer: UnsafeMutableBufferPointer<UInt8>,
        width: Int, height: Int
    ) {
        for py in max(y, 0)..<min(y + h, height) {
            for px in max(x, 0)..<min(x + w, width) {
                let o = (py * width + px) * 3
                buffer[o] = color.0; buffer[o + 1] = color.1; buffer[o + 2] = color.2
            }
        }
    }

    private static func drawGlyph(
        _ code: UInt8, x: Int, y: Int, into buffer: UnsafeMutableBufferPointer<UInt8>, width: Int, height: Int
    ) {
        for row in 0..<BitmapFont.height {
            let bits = BitmapFont.rowBits(code, row: row)
            guard bits != 0 else { continue }
            let py = y + row
            guard py < height else { return }
            for column in 0..<BitmapFont.width where bits & (0x80 >> column) != 0 {
                let px = x + column
                guard px < width else { continue }
                let o = (py * width + px) * 3
                buffer[o] = foreground.0; buffer[o + 1] = foreground.1; buffer[o + 2] = foreground.2
            }
        }
    }

    /// A 12-pixel arrow: white body with a black outline.
    private static let arrow: [String] = [
        "X", "XX", "XWX", "XWWX", "XWWWX", "XWWWWX", "XWWWWWX", "XWWWWWWX", "XWWWWWWWX", "XWWWWXXXXX", "XWXWWX",
        "XX XWWX", "X  XWWX", "    XWWX", "    XXX",
    ]

    private static func drawPointer(
        at pointer: (x: Int, y: Int), into buffer: UnsafeMutableBufferPointer<UInt8>, width: Int, height: Int
    ) {
        for (dy, line) in arrow.enumerated() {
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

    /// Nearest-neighbour scaling to the configured output resolution.
    static func scale(_ pixels: [UInt8], width: Int, height: Int, toWidth: Int, toHeight: Int) -> [UInt8] {
        guard toWidth != width || toHeight != height, toWidth > 0, toHeight > 0 else { return pixels }
        var out = [UInt8](repeating: 0, count: toWidth * toHeight * 3)
        for y in 0..<toHeight {
            let sy = y * height / toHeight
            for x in 0..<toWidth {
                let sx = x * width / toWidth
                let s = (sy * width + sx) * 3
                let d = (y * toWidth + x) * 3
                out[d] = pixels[s]; out[d + 1] = pixels[s + 1]; out[d + 2] = pixels[s + 2]
            }
        }
        return out
    }
}

/// libturbojpeg compression of RGB frames.
enum JPEGEncoder {
    static func encode(rgb pixels: [UInt8], width: Int, height: Int, quality: Int) -> [UInt8]? {
        guard width > 0, height > 0, pixels.count >= width * height * 3, let handle = tjInitCompress() else { return nil }
        defer { tjDestroy(handle) }
        var jpegBuffer: UnsafeMutablePointer<UInt8>?
        var jpegSize: UInt = 0
        let result = pixels.withUnsafeBufferPointer { source in
            tjCompress2(
                handle, source.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_RGB.rawValue), &jpegBuffer, &jpegSize,
                Int32(TJSAMP_420.rawValue), Int32(min(max(quality, 1), 100)), TJFLAG_FASTDCT)
        }
        guard result == 0, let jpegBuffer else {
            if let jpegBuffer { tjFree(jpegBuffer) }
            return nil
        }
        defer { tjFree(jpegBuffer) }
        return Array(UnsafeBufferPointer(start: jpegBuffer, count: Int(jpegSize)))
    }
}

/// One encoded frame handed to viewers.
struct CapturedFrame: Sendable {
    var jpeg: [UInt8]
    var width: Int
    var height: Int
    var sequence: UInt64
}

/// The shared capture loop. It runs on the default executor, not the simulator's own threads,
/// so rendering and encoding never hold up requests and WebSocket input.
final class CaptureLoop: Sendable {
    struct Settings: Sendable {
        var fps: Int
        var quality: Int = 80
        /// 0 = the host's native size, else an output height from {1080, 720, 600, 480}.
        var resolution: Int = 0
        var gop: Int = 30
        var frameDetect = false
        /// While set and in the future, detection is paused (`detect/stop`).
        var detectPausedUntil: ContinuousClock.Instant?
        var hdmiEnabled = true
    }

    private struct Viewers {
        var next = 0
        var continuations: [Int: AsyncStream<CapturedFrame>.Continuation] = [:]
        var task: Task<Void, Never>?
    }

    private struct Cache {
        var version: UInt64 = 0
        var size: (Int, Int) = (0, 0)
        var quality = 0
        var frame: CapturedFrame?
        var lastSentVersion: UInt64 = 0
        var sequence: UInt64 = 0
    }

    let settings: Mutex<Settings>
    private let viewers = Mutex(Viewers())
    private let cache = Mutex(Cache())
    let host: VirtualHost
    /// Latest capture result per the device's codes (0 frame, 5 unchanged, −1 no image).
    let lastResult = Mutex<Int?>(nil)
    /// Frames handed to viewers since start (each tick that delivered counts once).
    let framesDelivered = Mutex(0)
    let onResult: @Sendable (Int) -> Void

    init(host: VirtualHost, fps: Int, onResult: @escaping @Sendable (Int) -> Void) {
        self.host = host
        self.settings = Mutex(Settings(fps: min(max(fps, 10), 60)))
        self.onResult = onResult
    }

    var viewerCount: Int { viewers.withLock { $0.continuations.count } }

    /// Registers an MJPEG viewer; the stream ends when `stop()` is called or the caller drops it.
    func subscribe() -> (AsyncStream<CapturedFrame>, @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<CapturedFrame>.makeStream(bufferingPolicy: .bufferingNewest(2))
        let id = viewers.withLock { v -> Int in
            let id = v.next
            v.next += 1
            v.continuations[id] = continuation
            if v.task == nil {
                v.task = Task { [weak self] in await self?.run() }
            }
            return id
        }
        let unsubscribe: @Sendable () -> Void = { [weak self] in
            // finish() runs onTermination, which calls back here: never finish under the lock.
            let removed = self?.viewers.withLock { v in v.continuations.removeValue(forKey: id) }
            removed?.finish()
        }
        continuation.onTermination = { _ in unsubscribe() }
        return (stream, unsubscribe)
    }

    func stop() {
        let (task, continuations) = viewers.withLock { v -> (Task<Void, Never>?, [AsyncStream<CapturedFrame>.Continuation]) in
            let result = (v.task, Array(v.continuations.values))
            v.task = nil
            v.continuations = [:]
            return result
        }
        task?.cancel()
        for c in continuations { c.finish() }
    }

    /// The machine's renderer: keeps the last frame and redraws only the cells that changed.
    private let textRenderer = Mutex(TextScreenRenderer())

    private enum Picture {
        case console(TextConsole, pointer: (Int, Int))
        case machine(TextScreen)
    }

    /// Encodes (or reuses) the JPEG of the current screen; nil while the host shows no signal.
    /// The JPEG is encoded only when the screen's version changed (or the output settings).
    func currentFrame() -> (CapturedFrame, UInt64)? {
        let cachedVersion = cache.withLock { $0.frame == nil ? nil : Optional($0.version) }
        let snapshot = host.state.withLock { s -> (Picture?, Int, Int, UInt64)? in
            VirtualHost.syncMachine(&s)
            guard s.poweredOn else { return nil }
            // Copy the screen only when it will be drawn.
            if cachedVersion == s.screenVersion { return (nil, s.width, s.height, s.screenVersion) }
            if let machine = s.machine { return (.machine(machine.screen), s.width, s.height, s.screenVersion) }
            return (.console(s.console, pointer: s.input.pointer), s.width, s.height, s.screenVersion)
        }
        let current = settings.withLock { $0 }
        guard let (picture, width, height, version) = snapshot, current.hdmiEnabled else { return nil }
        let output = Self.outputSize(resolution: current.resolution, width: width, height: height)
        if let cached = cache.withLock({ c -> (CapturedFrame, UInt64)? in
            guard let frame = c.frame, c.version == version, c.size == output, c.quality == current.quality else { return nil }
            return (frame, version)
        }) {
            return cached
        }
        let jpeg: [UInt8]?
        switch picture {
        case let .machine(screen):
            jpeg = textRenderer.withLock { renderer -> [UInt8]? in
                renderer.render(screen, width: width, height: height)
                if output.0 == width && output.1 == height {
                    return JPEGEncoder.encode(rgb: renderer.pixels, width: width, height: height, quality: current.quality)
                }
                let scaled = ScreenRenderer.scale(renderer.pixels, width: width, height: height, toWidth: output.0, toHeight: output.1)
                return JPEGEncoder.encode(rgb: scaled, width: output.0, height: output.1, quality: current.quality)
            }
        case let .console(console, pointer):
            var pixels = ScreenRenderer.render(console: console, pointer: pointer, width: width, height: height)
            pixels = ScreenRenderer.scale(pixels, width: width, height: height, toWidth: output.0, toHeight: output.1)
            jpeg = JPEGEncoder.encode(rgb: pixels, width: output.0, height: output.1, quality: current.quality)
        case nil:
            // The version matched the cache but the output settings did not: draw afresh.
            cache.withLock { $0.frame = nil }
            return currentFrame()
        }
        guard let jpeg else { return nil }
        return cache.withLock { c in
            c.sequence += 1
            let frame = CapturedFrame(jpeg: jpeg, width: output.0, height: output.1, sequence: c.sequence)
            c.frame = frame
            c.version = version
            c.size = output
            c.quality = current.quality
            return (frame, version)
        }
    }

    static func outputSize(resolution: Int, width: Int, height: Int) -> (Int, Int) {
        switch resolution {
        case 1080: return (1920, 1080)
        case 720: return (1280, 720)
        case 600: return (800, 600)
        case 480: return (640, 480)
        default: return (width, height)
        }
    }

    private func run() async {
        while !Task.isCancelled {
            let current = settings.withLock { $0 }
            let fps = min(max(current.fps, 10), 60)
            let tickStart = ContinuousClock.now
            if viewerCount == 0 {
                viewers.withLock { $0.task = nil }
                // A viewer may have subscribed between the check and the reset.
                if viewerCount > 0 {
                    viewers.withLock { v in
                        if v.task == nil {
                            v.task = Task { [weak self] in await self?.run() }
                        }
                    }
                }
                return
            }
            tick(current)
            let next = tickStart + .nanoseconds(1_000_000_000 / fps)
            try? await Task.sleep(until: next, clock: .continuous)
        }
    }

    private func tick(_ current: Settings) {
        guard let (frame, version) = currentFrame() else {
            report(-1)
            return
        }
        let detecting = current.frameDetect && !(current.detectPausedUntil.map { ContinuousClock.now < $0 } ?? false)
        let unchanged = cache.withLock { c -> Bool in
            defer { c.lastSentVersion = version }
            return c.lastSentVersion == version
        }
        if detecting && unchanged {
            report(5)
            return
        }
        report(0)
        framesDelivered.withLock { $0 += 1 }
        let continuations = viewers.withLock { Array($0.continuations.values) }
        for continuation in continuations { continuation.yield(frame) }
    }

    private func report(_ result: Int) {
        let changed = lastResult.withLock { last -> Bool in
            defer { last = result }
            return last != result
        }
        if changed { onResult(result) }
    }
}
