// Everything the simulated device remembers: accounts and sessions, the ATX lines, the USB
// gadget (images, virtual devices, HID mode), and the many small settings of §6. One value
// type behind one lock; handlers read and change it in short critical sections.

import Foundation
import NanoKVM

struct UserRecord: Sendable {
    var password: String
    var role: SimulatorRole
    var enabled: Bool
    var tokenVersion: UInt64 = 1
    var mustChangePassword: Bool
    var systemAccount: Bool
}

struct LoginAttempt: Sendable {
    var failures = 0
    var lastFailed: ContinuousClock.Instant?
    var lockoutEnd: ContinuousClock.Instant?
}

struct DeviceState: Sendable {
    // Accounts and sessions.
    var users: [String: UserRecord] = [:]
    var userOrder: [String] = []
    var jwtSecret: [UInt8] = DeviceCrypto.randomBytes(64)
    var loginAttempts: [String: LoginAttempt] = [:]

    // ATX.
    var powerButtonDown = false
    var resetButtonDown = false

    // Storage.
    var images: [String: Int] = [:]
    var mountedFile = ""
    var cdromFlag = 0
    var readOnlyFlag = 0
    var inquiry = ""
    var networkDevice = true
    var diskDevice = true
    var hidMode = "normal"

    // System settings.
    var hostname = "kvm-1a2b"
    var webTitle: String?
    var sshEnabled = true
    var mdnsEnabled = true
    var oledExists = true
    var oledSleep = 0
    var swapSize = 0
    var memoryLimit: Int?
    var hdmiEnabled = true
    var hdmiIdleTimeout = 0
    var jigglerEnabled = false
    var jigglerMode = "relative"
    var tlsEnabled = false
    var autostart: [String: String]?
    var scripts: [String: String]? = [:]
    var previewUpdates = false
    var updateServer = (enabled: false, url: "")
    var shortcuts: [(id: String, keys: [(code: String, label: String)])] = []
    var leaderKey = ""

    // Network.
    var wolHistory: [String]?
    var wifi = (supported: false, apMode: false, connected: false, ssid: "")
    var dnsMode = "dhcp"
    var dnsServers: [String] = []
    var dhcpDNS = ["192.168.1.1"]
    var tailscale = "notInstall"
    var tailscaleLoggedIn = false

    // Video.
    var legacyDetectFile = false
    var legacyDetectPaused = false
    var screenType = "mjpeg"

    // Downloads and AI.
    var downloadStatus = (status: "idle", file: "", percentage: "")
    var aiControlMode = "off"
    var mcpEnabled = false
    var mcpKey = ""

    // Counters and the request log (inspection).
    var loginCount = 0
    var failedLoginCount = 0
    var requestLog: [SimulatorRequestRecord] = []
    var lastWebSocketOrigin: String?

    // Fault injection.
    var faults: [SimulatorFault] = []
    var webSocketDropAfterReports: Int?

    init(configuration: SimulatorConfiguration) {
        users[configuration.username] = UserRecord(
            password: configuration.password, role: .admin, enabled: true,
            mustChangePassword: configuration.password == "admin", systemAccount: true)
        userOrder.append(configuration.username)
        if configuration.generation == .current {
            for user in configuration.users where users[user.username] == nil {
                users[user.username] = UserRecord(
                    password: user.password, role: user.role, enabled: user.enabled, mustChangePassword: false,
                    systemAccount: false)
                userOrder.append(user.username)
            }
        }
        images = configuration.images
        mcpKey = GoBase64.encodeURL(DeviceCrypto.randomBytes(24))
    }
}

/// Faults tests can inject (in-process or through `POST /__sim/fault`).
public enum SimulatorFault: Sendable, Equatable {
    /// The next request (or the next one whose path starts with `path`) gets HTTP 500, empty body.
    case http500(path: String? = nil)
    /// The next matching request gets a 200 with a body that is not JSON.
    case malformedJSON(path: String? = nil)
    /// The next matching request is answered `seconds` later.
    case delay(seconds: Double, path: String? = nil)
    /// The next matching request's connection is closed without an answer.
    case dropConnection(path: String? = nil)
    /// Close every open `/api/ws` connection now (TCP close, no close frame).
    case dropWebSockets
    /// Close each `/api/ws` connection after it has received `reports` more reports.
    case dropWebSocketsAfter(reports: Int)
    /// The next matching request gets a 200 whose body is JSON but not an envelope (`{"hello":1}`).
    case notAnEnvelope(path: String? = nil)
    /// The next MJPEG part is cut off in the middle and the stream ends.
    case truncateNextMJPEGPart
    /// The next MJPEG part declares its full Content-Length but only about half of the bytes
    /// follow; the stream goes on with the next part.
    case truncateMJPEGPartAndContinue
    /// The next MJPEG part carries bytes that are not a JPEG (its Content-Length is right).
    case garbleNextMJPEGPart
    /// Every token becomes invalid (a simulated service restart).
    case expireTokens

    var path: String? {
        switch self {
        case let .http500(path), let .malformedJSON(path), let .dropConnection(path), let .notAnEnvelope(path): return path
        case let .delay(_, path): return path
        default: return nil
        }
    }

    var isRequestFault: Bool {
        switch self {
        case .http500, .malformedJSON, .delay, .dropConnection, .notAnEnvelope: return true
        default: return false
        }
    }
}

/// One request as the simulated device saw it.
public struct SimulatorRequestRecord: Sendable, Equatable {
    public var method: String
    public var path: String
    /// A `nano-kvm-token` cookie was sent.
    public var hadCookie: Bool
    /// The `Origin` header, if any.
    public var origin: String?
    /// The HTTP status answered (101 for WebSocket upgrades; 0 when the connection was dropped).
    public var status: Int
}
