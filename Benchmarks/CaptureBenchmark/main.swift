// Capture CPU: what the simulator's HDMI capture costs while an MJPEG viewer watches, at
// 1280×720 and 30 fps, per scene, as % of one core (process CPU time from getrusage over the
// measured window, the viewer's own reading included). Run as a release build:
//
//   scripts/build-release --product CaptureBenchmark && .build/release/CaptureBenchmark [--seconds 10]
//
// Scenes, each in a fresh simulator, the same viewer (a raw socket reading the multipart stream):
//   console       the minimal console (the capture loop as it was before the machine): unchanged
//   bios-still    the machine's firmware setup with a fixed clock: nothing changes on screen
//   bios-clock    the same with the real clock: one changed line per second
//   login-blink   the Linux console's login prompt: the cursor blinks (2 changes per second)
//   typing        the console while a character is typed every 100 ms (renders only what changed)
// Goal (issue 12): ≤ 25 % of one core while the screen does not change.
// Measured 2026-12-03 on the shared 2-core dev machine (8 s per scene): console 2.00 %, bios-still
// 2.61 % (1.31x), bios-clock 2.85 %, login-blink 2.60 %, typing 4.95 % (machine) / 4.90 % (console).

import Foundation
import NanoKVM
import NanoKVMSimulator

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

/// Reads the MJPEG stream on its own thread until stopped; counts bytes and JPEG starts.
final class Viewer: @unchecked Sendable {
    // Written by the reader thread, read after `stop()` joined it.
    var bytes = 0
    var frames = 0
    private var fd: Int32 = -1
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    init?(port: Int, token: String) {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        fd = socketFD
        let request = "GET /api/stream/mjpeg HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: nano-kvm-token=\(token)\r\n\r\n"
        _ = Array(request.utf8).withUnsafeBytes { send(socketFD, $0.baseAddress, $0.count, 0) }
        let fd = socketFD
        thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var previous: UInt8 = 0
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                bytes += n
                for i in 0..<n {
                    if previous == 0xFF && buffer[i] == 0xD8 { frames += 1 }
                    previous = buffer[i]
                }
            }
            done.signal()
        }
        thread?.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        done.wait()
        close(fd)
    }
}

enum BenchmarkError: Error { case viewer }

struct Scenario {
    var name: String
    var scene: SimulatorScene
    var fixedClock: Bool
    var typing: Bool
}

func measure(_ scenario: Scenario, seconds: Double) async throws -> (cpu: Double, frames: Int, megabytes: Double) {
    var configuration = SimulatorConfiguration(width: 1280, height: 720, fps: 30, loginDelayScale: 0, timeScale: 0)
    configuration.scene = scenario.scene
    if scenario.fixedClock { configuration.clock = Date(timeIntervalSince1970: 1_796_304_411) }
    let simulator = NanoKVMSimulator(configuration: configuration)
    try await simulator.start()
    defer { simulator.stopInBackground() }
    guard let token = simulator.makeToken(), let viewer = Viewer(port: simulator.port, token: token) else {
        throw BenchmarkError.viewer
    }
    // Warm-up: the first frames are encoded in full.
    try await Task.sleep(for: .seconds(1))
    let startCPU = cpuSeconds()
    let startFrames = viewer.frames
    let start = ContinuousClock.now
    var typed = 0
    while ContinuousClock.now - start < .milliseconds(Int64(seconds * 1000)) {
        if scenario.typing {
            let usage = UInt8(0x04 + typed % 26)
            simulator.injectKeyboardReport([0, 0, usage, 0, 0, 0, 0, 0])
            simulator.injectKeyboardReport([0, 0, 0, 0, 0, 0, 0, 0])
            typed += 1
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    let elapsed = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
    let cpu = (cpuSeconds() - startCPU) / elapsed
    let frames = viewer.frames - startFrames
    viewer.stop()
    return (cpu, frames, Double(viewer.bytes) / 1_048_576)
}

var seconds = 10.0
var arguments = Array(CommandLine.arguments.dropFirst())
while let flag = arguments.first {
    arguments.removeFirst()
    if flag == "--seconds", let value = arguments.first.flatMap(Double.init) { seconds = value; arguments.removeFirst() }
}

let scenarios = [
    Scenario(name: "console (current loop, unchanged)", scene: .console, fixedClock: false, typing: false),
    Scenario(name: "bios-still (machine, unchanged)", scene: .bios, fixedClock: true, typing: false),
    Scenario(name: "bios-clock (1 line/s changes)", scene: .bios, fixedClock: false, typing: false),
    Scenario(name: "login-blink (cursor 2/s)", scene: .login, fixedClock: true, typing: false),
    Scenario(name: "typing (machine console, 10 keys/s)", scene: .login, fixedClock: true, typing: true),
    Scenario(name: "typing (minimal console, 10 keys/s)", scene: .console, fixedClock: true, typing: true),
]
print("CaptureBenchmark: 1280x720 at 30 fps, one MJPEG viewer, \(seconds) s per scene")
var baseline: Double?
for scenario in scenarios {
    let result = try await measure(scenario, seconds: seconds)
    if baseline == nil { baseline = result.cpu }
    let ratio = baseline.map { $0 > 0 ? String(format: "%.2fx", result.cpu / $0) : "-" } ?? "-"
    let name = scenario.name.padding(toLength: 40, withPad: " ", startingAt: 0)
    print(name + String(format: "%6.2f %% of one core  (%@ the console)  %4d frames  %.1f MB", result.cpu * 100, ratio, result.frames, result.megabytes))
}
