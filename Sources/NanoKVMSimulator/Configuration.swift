// What a simulated NanoKVM looks like: which firmware generation it imitates, its account,
// its screen, and the knobs tests use to make it fast (delay scales, short heartbeat).

import Foundation
import NanoKVM

/// The firmware generations the simulator imitates (protocol §1).
public enum SimulatorGeneration: String, Sendable, CaseIterable {
    /// Application 2.0.9 (the seed notes): `/api/storage/images`, `/api/vm/gpio/led`, `data.token`
    /// in the login answer, `firmware` in `/api/vm/info`, JSON-array WebSocket, MJPEG parts
    /// without Content-Length.
    case legacy
    /// sipeed `main` after 2.5.0: cookie-only login, roles, binary WebSocket with a 90 s
    /// heartbeat deadline, server events, MJPEG parts with Content-Length.
    case current

    /// The application version the generation reports by default.
    public var defaultApplicationVersion: String {
        switch self {
        case .legacy: return "2.0.9"
        case .current: return "2.5.1"
        }
    }
}

/// A user's role on `main` (protocol §5). Legacy firmware has one account with every right.
public enum SimulatorRole: String, Sendable {
    case admin
    case user
}

/// An account of the simulated device.
public struct SimulatorUser: Sendable, Equatable {
    public var username: String
    public var password: String
    public var role: SimulatorRole
    public var enabled: Bool

    public init(username: String, password: String, role: SimulatorRole = .user, enabled: Bool = true) {
        self.username = username
        self.password = password
        self.role = role
        self.enabled = enabled
    }
}

public struct SimulatorConfiguration: Sendable {
    public var generation: SimulatorGeneration
    /// Address to bind; 127.0.0.1 unless a test or the CLI asks otherwise.
    public var host: String
    /// TCP port; 0 picks a free one (read it back from `NanoKVMSimulator.port`).
    public var port: Int
    /// The owner account (role admin).
    public var username: String
    public var password: String
    /// More accounts (current generation only: roles and multi-user exist on `main`).
    public var users: [SimulatorUser]
    /// Screen size of the simulated host (the HDMI input), in pixels.
    public var width: Int
    public var height: Int
    /// Initial capture frame rate; `POST /api/vm/screen` changes it within 10…60.
    public var fps: Int
    /// Multiplies the server's deliberate login delays (2 s / 3 s, §12.8); 0 in tests.
    public var loginDelayScale: Double
    /// Multiplies the time the device spends doing things: GPIO press durations, paste
    /// timing, HID reset, detect/stop, Wi-Fi waits. 0 makes them instant.
    public var timeScale: Double
    /// WebSocket read deadline (current generation; 90 s on the real device). nil = none.
    public var heartbeatDeadline: Duration?
    /// Enables `GET /__sim/state` and `POST /__sim/fault` (404 otherwise).
    public var inspection: Bool
    /// `authentication: disable` in the device's server.yaml (§4.6).
    public var authenticationDisabled: Bool
    /// Login lockout (2.3.5+, off by default): failures per client IP before a lockout, and
    /// the lockout duration. nil = disabled.
    public var loginLockout: (maxFailures: Int, duration: Duration)?
    /// Token lifetime (31 days on the device).
    public var tokenLifetime: Duration
    /// The application version `/api/vm/info` reports; nil = the generation's default. Versions
    /// between 2.0.9 and 2.5.1 pick the matching behaviour switches of §11.3 where cheap.
    public var applicationVersion: String?
    /// The keyboard layout of the simulated host's operating system (turns HID reports into text).
    public var hostLayout: KeyboardLayout
    /// Image files in the simulated `/data`: absolute path → size in bytes.
    public var images: [String: Int]
    /// The simulated host starts powered on.
    public var hostPoweredOn: Bool
    /// Hardware version reported by `/api/vm/hardware` (`Alpha`, `Beta`, `PCIE`).
    public var hardware: String
    /// Log each request to standard error (the CLI's `--verbose`).
    public var logRequests: Bool
    /// What the simulated host is: `console` (the default) is the minimal echo console;
    /// every other scene is the machine that boots (POST, setup, boot menu, GRUB, installer,
    /// Linux console), starting at that screen when powered on at start. Its timings are the
    /// real ones multiplied by `timeScale` (at least 5 % of them).
    public var scene: SimulatorScene
    /// A fixed wall clock for the machine's setup clock and `date` (deterministic frames in
    /// tests); nil = the real time.
    public var clock: Date?
    /// The machine's Linux console: host name, the account that can log in, its password.
    public var targetHostname: String
    public var targetUser: String
    public var targetPassword: String

    public init(
        generation: SimulatorGeneration = .current,
        host: String = "127.0.0.1",
        port: Int = 0,
        username: String = "admin",
        password: String = "admin",
        users: [SimulatorUser] = [],
        width: Int = 1280,
        height: Int = 720,
        fps: Int = 30,
        loginDelayScale: Double = 1.0,
        timeScale: Double = 1.0,
        heartbeatDeadline: Duration? = .seconds(90),
        inspection: Bool = false,
        authenticationDisabled: Bool = false,
        loginLockout: (maxFailures: Int, duration: Duration)? = nil,
        tokenLifetime: Duration = .seconds(2_678_400),
        applicationVersion: String? = nil,
        hostLayout: KeyboardLayout = .us,
        images: [String: Int] = SimulatorConfiguration.defaultImages,
        hostPoweredOn: Bool = true,
        hardware: String = "Alpha",
        logRequests: Bool = false,
        scene: SimulatorScene = .console,
        clock: Date? = nil,
        targetHostname: String = "kvmtarget",
        targetUser: String = "root",
        targetPassword: String = "root"
    ) {
        self.generation = generation
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.users = users
        self.width = width
        self.height = height
        self.fps = fps
        self.loginDelayScale = loginDelayScale
        self.timeScale = timeScale
        self.heartbeatDeadline = heartbeatDeadline
        self.inspection = inspection
        self.authenticationDisabled = authenticationDisabled
        self.loginLockout = loginLockout
        self.tokenLifetime = tokenLifetime
        self.applicationVersion = applicationVersion
        self.hostLayout = hostLayout
        self.images = images
        self.hostPoweredOn = hostPoweredOn
        self.hardware = hardware
        self.logRequests = logRequests
        self.scene = scene
        self.clock = clock
        self.targetHostname = targetHostname
        self.targetUser = targetUser
        self.targetPassword = targetPassword
    }

    /// A configuration for tests: no deliberate delays, inspection on.
    public static func fast(_ generation: SimulatorGeneration = .current) -> SimulatorConfiguration {
        SimulatorConfiguration(generation: generation, loginDelayScale: 0, timeScale: 0, inspection: true)
    }

    public static let defaultImages: [String: Int] = [
        "/data/ubuntu-24.04-desktop-amd64.iso": 6_114_656_256,
        "/data/debian-12.5.0-amd64-netinst.iso": 659_554_304,
        "/data/freedos/FD14-FullUSB.img": 524_288_000,
        "/data/memtest86.IMG": 1_048_576,
    ]

    /// Fixes the machine's clock at `unixSeconds` (callers without Foundation's `Date`).
    public mutating func fixClock(unixSeconds: Double) { clock = Date(timeIntervalSince1970: unixSeconds) }

    /// The application version in effect.
    public var effectiveApplicationVersion: String {
        applicationVersion ?? generation.defaultApplicationVersion
    }
}

/// A parsed `major.minor.patch` for the §11.3 switches.
struct ApplicationVersion: Comparable, Sendable {
    var parts: [Int]

    init(_ text: String) {
        let core = text.split(separator: "-").first.map(String.init) ?? text
        let trimmed = core.hasPrefix("v") ? String(core.dropFirst()) : core
        parts = trimmed.split(separator: ".").map { Int($0) ?? 0 }
        while parts.count < 3 { parts.append(0) }
    }

    static func < (lhs: ApplicationVersion, rhs: ApplicationVersion) -> Bool {
        for (a, b) in zip(lhs.parts, rhs.parts) where a != b { return a < b }
        return lhs.parts.count < rhs.parts.count
    }

    func atLeast(_ text: String) -> Bool { self >= ApplicationVersion(text) }
}
