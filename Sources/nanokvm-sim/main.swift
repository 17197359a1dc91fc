// nanokvm-sim: run the simulated NanoKVM as a standalone HTTP server.

import Foundation
import NanoKVM
import NanoKVMSimulator

let usage = """
    usage: nanokvm-sim [options]
      --port N              TCP port (default 8080; 0 picks a free one)
      --host ADDR           address to bind (default 127.0.0.1)
      --generation G        legacy (application 2.0.9) or current (sipeed main); default current
      --app-version V       application version to report (picks behaviour between generations)
      --user NAME           account name (default admin)
      --password PASS       account password (default admin)
      --width N --height N  host screen size (default 1280x720)
      --fps N               initial capture rate, 10..60 (default 30)
      --layout L            host keyboard layout: any XKB name, e.g. ch(fr), gb (default us)
      --login-delay-scale X multiply the device's failed-login delays (default 1; 0 = none)
      --time-scale X        multiply button presses, paste pacing and other device waits (default 1)
      --heartbeat S         WebSocket read deadline in seconds (default 90; 0 = none)
      --inspection          enable GET /__sim/state and POST /__sim/fault
      --no-auth             behave as with `authentication: disable`
      --power-off           start with the simulated host powered off (--power off)
      --power on|off        whether the simulated host is on at start (default on)
      --scene S             what the host is (default machine):
                              machine|post  the machine that boots: POST (DEL = setup, F12 = boot
                                            menu), then the boot order: GRUB from the disk, the
                                            installer from an image mounted as CD-ROM
                              bios          firmware setup already entered
                              bootmenu      the firmware's boot menu
                              grub          GRUB's menu with its 5 s countdown
                              installer     the installer's menu (as booted from the CD-ROM)
                              login         the Linux console's login prompt
                              console       the minimal echo console (no firmware, no boot)
                            scene timings are the real ones times --time-scale (at least 5 %)
      --clock TIME          fix the machine's clock (Unix seconds or YYYY-MM-DDTHH:MM:SSZ) for
                            deterministic frames; default the real time
      --target-hostname H   the machine's host name (default kvmtarget)
      --target-user NAME    the account that can log in on its console (default root)
      --target-password P   its password (default root)
      --count N             N devices in this process (a fleet), on consecutive ports from --port
                            (each on a free port with --port 0), one "at URL" line each; 1..1000
      --verbose             log every request to standard error
      --obfuscate PASS      print PASS obfuscated like the web UI (URL-encoded) and exit
      --deobfuscate FIELD   print what the device decodes from a password field and exit
      --help                show this text
    """

/// SIGINT and SIGTERM are blocked in every thread (set before any thread starts, so all
/// inherit it) and taken synchronously by one waiting thread, which stops the server cleanly.
func blockedStopSignals() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    return set
}
var stopSignals = blockedStopSignals()
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("nanokvm-sim: \(message)\n".utf8))
    exit(2)
}

var configuration = SimulatorConfiguration(port: 8080, scene: .machine)
var deviceCount = 1
var arguments = Array(CommandLine.arguments.dropFirst())

@MainActor func value(_ flag: String) -> String {
    guard !arguments.isEmpty else { fail("\(flag) needs a value (see --help)") }
    return arguments.removeFirst()
}

func number(_ flag: String, _ text: String) -> Double {
    guard let n = Double(text), n.isFinite, n >= 0, n <= 1_000_000 else { fail("\(flag): not a number in 0...1000000: \(text)") }
    return n
}

func integer(_ flag: String, _ text: String, _ range: ClosedRange<Int>) -> Int {
    guard let n = Int(text), range.contains(n) else {
        fail("\(flag): expected an integer in \(range.lowerBound)...\(range.upperBound), got \(text)")
    }
    return n
}

while !arguments.isEmpty {
    var flag = arguments.removeFirst()
    if flag.hasPrefix("--"), let equals = flag.firstIndex(of: "=") {
        arguments.insert(String(flag[flag.index(after: equals)...]), at: 0)
        flag = String(flag[..<equals])
    }
    switch flag {
    case "--help", "-h":
        print(usage)
        exit(0)
    case "--port": configuration.port = integer(flag, value(flag), 0...65535)
    case "--host": configuration.host = value(flag)
    case "--generation":
        let text = value(flag)
        guard let generation = SimulatorGeneration(rawValue: text) else { fail("--generation: expected legacy or current, got \(text)") }
        configuration.generation = generation
    case "--app-version":
        let text = value(flag)
        guard text.range(of: #"^v?\d+(\.\d+){0,2}(-[A-Za-z0-9.]+)?$"#, options: .regularExpression) != nil else {
            fail("--app-version: not a version: \(text)")
        }
        configuration.applicationVersion = text
    case "--user":
        configuration.username = value(flag)
        if configuration.username.isEmpty { fail("--user: empty name") }
    case "--password": configuration.password = value(flag)
    case "--width": configuration.width = integer(flag, value(flag), 64...7680)
    case "--height": configuration.height = integer(flag, value(flag), 32...4320)
    case "--fps": configuration.fps = integer(flag, value(flag), 10...60)
    case "--layout":
        let text = value(flag)
        do { configuration.hostLayout = try KeyboardLayout.resolve(text) } catch { fail("--layout: \(error.message)") }
    case "--login-delay-scale", "--delay-scale": configuration.loginDelayScale = number(flag, value(flag))
    case "--time-scale": configuration.timeScale = number(flag, value(flag))
    case "--heartbeat":
        let seconds = number(flag, value(flag))
        configuration.heartbeatDeadline = seconds == 0 ? nil : .milliseconds(Int64(seconds * 1000))
    case "--inspection": configuration.inspection = true
    case "--no-auth": configuration.authenticationDisabled = true
    case "--power-off": configuration.hostPoweredOn = false
    case "--power":
        let text = value(flag)
        guard text == "on" || text == "off" else { fail("--power: expected on or off, got \(text)") }
        configuration.hostPoweredOn = text == "on"
    case "--scene":
        let text = value(flag)
        guard let scene = SimulatorScene(rawValue: text) else {
            fail("--scene: expected one of \(SimulatorScene.allCases.map(\.rawValue).joined(separator: ", ")), got \(text)")
        }
        configuration.scene = scene
    case "--clock":
        let text = value(flag)
        if let seconds = Double(text), seconds.isFinite, seconds >= 0 {
            configuration.clock = Date(timeIntervalSince1970: seconds)
        } else if let date = ISO8601DateFormatter().date(from: text) {
            configuration.clock = date
        } else {
            fail("--clock: expected Unix seconds or YYYY-MM-DDTHH:MM:SSZ, got \(text)")
        }
    case "--target-hostname":
        configuration.targetHostname = value(flag)
        if configuration.targetHostname.isEmpty { fail("--target-hostname: empty name") }
    case "--target-user":
        configuration.targetUser = value(flag)
        if configuration.targetUser.isEmpty { fail("--target-user: empty name") }
    case "--target-password": configuration.targetPassword = value(flag)
    case "--count": deviceCount = integer(flag, value(flag), 1...1000)
    case "--verbose": configuration.logRequests = true
    case "--obfuscate":
        print(NanoKVMSimulator.obfuscate(value(flag)))
        exit(0)
    case "--deobfuscate":
        guard let plain = NanoKVMSimulator.deobfuscate(value(flag)) else { fail("--deobfuscate: the device would reject this field") }
        print(plain)
        exit(0)
    default:
        fail("unknown option \(flag) (see --help)")
    }
}

// --count N: devices on consecutive ports (or each on a free one), all in this process.
let simulators: [NanoKVMSimulator] = (0..<deviceCount).map { index in
    var own = configuration
    if configuration.port != 0 { own.port = configuration.port + index }
    if deviceCount > 1, configuration.targetHostname == "kvmtarget" { own.targetHostname = "kvmtarget-\(index + 1)" }
    return NanoKVMSimulator(configuration: own)
}
let startup = DispatchSemaphore(value: 0)
let startupError = LockedMessage()

final class LockedMessage: @unchecked Sendable {
    // Written once by the start task before the semaphore is signalled, read after the wait.
    var text: String?
}

Task.detached {
    do {
        for simulator in simulators { try await simulator.start() }
    } catch {
        startupError.text = "\(error)"
    }
    startup.signal()
}
startup.wait()
if let message = startupError.text {
    FileHandle.standardError.write(Data("nanokvm-sim: \(message)\n".utf8))
    exit(1)
}

for simulator in simulators {
    FileHandle.standardOutput.write(Data(
        "nanokvm-sim: \(configuration.generation.rawValue) NanoKVM (application \(configuration.effectiveApplicationVersion)) at \(simulator.baseURL)\n".utf8))
}

// The main thread waits for SIGINT/SIGTERM itself (not dispatchMain(), whose signal thread
// would unblock them and let the default action kill the process uncleanly).
var received: Int32 = 0
sigwait(&stopSignals, &received)
let stopped = DispatchSemaphore(value: 0)
Task.detached {
    for simulator in simulators { await simulator.stop() }
    stopped.signal()
}
_ = stopped.wait(timeout: .now() + 3)
exit(0)
