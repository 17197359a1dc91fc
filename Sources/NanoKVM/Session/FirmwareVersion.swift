// Firmware generations and versions (protocol §1, §11). The application version
// (`/kvmapp/version`, reported by `/api/vm/info`) decides every behaviour switch; the
// "generation" is the coarse split the WebSocket protocol needs.

/// The WebSocket input protocol family.
public enum FirmwareGeneration: String, Sendable, CaseIterable {
    /// 2.0.x – 2.3.1: JSON-array text frames (§8.6).
    case legacy
    /// 2.3.2 and later: binary HID report frames (§8.2).
    case current
}

/// How the client picks the generation: from the detected version, or forced by the caller.
public enum ProtocolSelection: String, Sendable, CaseIterable {
    case auto
    case legacy
    case current
}

/// A NanoKVM application version such as `2.3.1` or `2.5.0-beta1`. Ordering and every feature
/// switch use the numeric part only, so a preview build counts as its release.
public struct FirmwareVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    public let patch: Int
    /// Whatever followed the numbers (`-beta1`, `+build`), empty for a release.
    public let suffix: String

    public init(_ major: Int, _ minor: Int, _ patch: Int, suffix: String = "") {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.suffix = suffix
    }

    /// Parses `2.3.1`, `v2.3.1`, `2.3` (patch 0) and `2.3.1-rc1`; nil for anything else.
    public init?(parsing text: String) {
        var rest = Substring(text.trimmingCharacters(in: " \t\r\n"))
        if rest.first == "v" || rest.first == "V" { rest = rest.dropFirst() }
        var numbers: [Int] = []
        while numbers.count < 3 {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, digits.count <= 6, let value = Int(digits) else { break }
            numbers.append(value)
            rest = rest.dropFirst(digits.count)
            if numbers.count < 3, rest.first == "." {
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard numbers.count >= 2 else { return nil }
        if let next = rest.first, next != "-", next != "+", next != " " { return nil }
        self.init(numbers[0], numbers[1], numbers.count > 2 ? numbers[2] : 0, suffix: String(rest))
    }

    public var description: String { "\(major).\(minor).\(patch)\(suffix)" }

    public static func < (lhs: FirmwareVersion, rhs: FirmwareVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }

    public static func == (lhs: FirmwareVersion, rhs: FirmwareVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) == (rhs.major, rhs.minor, rhs.patch)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major); hasher.combine(minor); hasher.combine(patch)
    }

    /// The first version speaking the binary WebSocket protocol.
    public static let firstBinaryWebSocket = FirmwareVersion(2, 3, 2)
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        let scalars = Set(set.unicodeScalars)
        var view = Substring(self)
        while let first = view.unicodeScalars.first, scalars.contains(first) { view = view.dropFirst() }
        while let last = view.unicodeScalars.last, scalars.contains(last) { view = view.dropLast() }
        return String(view)
    }
}

/// How much text one `POST /api/hid/paste` may carry (§6.3.1).
public enum PasteLimit: Sendable, Equatable {
    /// Before 2.5.0: `len(content)` in UTF-8 bytes.
    case utf8Bytes(Int)
    /// 2.5.0 and later: Unicode code points.
    case codePoints(Int)
}

/// How legacy JSON keyboard messages carry modifiers (§8.6).
public enum LegacyModifierEncoding: Sendable, Equatable {
    /// 2.0.x – 2.1.2: 0/1 flags (alt: 0 none, 1 left, 2 right).
    case flags
    /// 2.1.3 – 2.3.1: each field is the modifier's bit value (0x01/0x10, 0x02/0x20, …).
    case bitValues
}

/// Everything the client derives from the detected firmware: the version switches of §11.3
/// and the endpoint availability of §7.
public struct FirmwareProfile: Sendable, Equatable {
    /// The exact version string the device reported (`application` or `firmware`).
    public let versionString: String
    /// The numeric version used for every switch.
    public let version: FirmwareVersion
    /// The multi-user firmware after 2.5.0 ("main"): cookie-only login, roles, user management.
    public let isMultiUser: Bool
    /// The generation the client uses (detected, or forced by `ProtocolSelection`).
    public let generation: FirmwareGeneration
    /// The generation the version implies.
    public let detectedGeneration: FirmwareGeneration

    public init(versionString: String, version: FirmwareVersion, isMultiUser: Bool, selection: ProtocolSelection = .auto) {
        self.versionString = versionString
        self.version = version
        self.isMultiUser = isMultiUser
        let detected: FirmwareGeneration =
            (isMultiUser || version >= FirmwareVersion.firstBinaryWebSocket) ? .current : .legacy
        self.detectedGeneration = detected
        switch selection {
        case .auto: self.generation = detected
        case .legacy: self.generation = .legacy
        case .current: self.generation = .current
        }
    }

    func atLeast(_ major: Int, _ minor: Int, _ patch: Int) -> Bool { version >= FirmwareVersion(major, minor, patch) }

    /// 2.0.x: closed-source server with `/api/storage/images`, `/api/vm/gpio/led`, `/api/firmware/*`.
    public var isClosedSourceGeneration: Bool { !atLeast(2, 1, 0) }
    /// `/api/vm/info` reports `ips` (array) instead of `ip` (string).
    public var infoHasIPList: Bool { atLeast(2, 2, 6) }
    /// ≤2.2.2: `POST /api/stream/mjpeg/detect` toggles and `GET` reads the state.
    public var frameDetectionToggles: Bool { !atLeast(2, 2, 3) }
    /// MJPEG parts carry `Content-Length` from 2.3.0.
    public var mjpegPartsHaveContentLength: Bool { atLeast(2, 3, 0) }
    /// Paste size limit per request.
    public var pasteLimit: PasteLimit { atLeast(2, 5, 0) ? .codePoints(833) : .utf8Bytes(1024) }
    /// Time the device spends per pasted character.
    public var pasteCharacterDelay: Duration { atLeast(2, 3, 0) ? .milliseconds(30) : .milliseconds(50) }
    /// Paste layouts (`langue`) the firmware knows; an empty set means no `langue` field.
    public var pasteLayouts: Set<String> {
        if atLeast(2, 4, 1) { return ["en", "de", "fr", "ru"] }
        if atLeast(2, 3, 0) { return ["en", "de", "ru"] }
        return []
    }
    /// Legacy JSON keyboard modifier encoding.
    public var legacyModifierEncoding: LegacyModifierEncoding { atLeast(2, 1, 3) ? .bitValues : .flags }
    /// 2.4.1+: the server releases held keys and buttons when the WebSocket closes.
    public var serverReleasesInputOnDisconnect: Bool { atLeast(2, 4, 1) }
    /// 2.4.2+: the server sends `capture-status` (and 2.5.0+ LED) events on `/api/ws`.
    public var sendsWebSocketEvents: Bool { atLeast(2, 4, 2) }
    /// 2.5.0+: the WebSocket is dropped after 90 s without a data frame.
    public var webSocketReadTimeout: Duration? { atLeast(2, 5, 0) ? .seconds(90) : nil }
    /// Interval between heartbeats on `/api/ws` for this client's generation.
    public var heartbeatInterval: Duration { generation == .current ? .seconds(15) : .seconds(60) }
    /// Tailscale route prefix: `/api/network/tailscale` before 2.1.6.
    public var tailscalePrefix: String { atLeast(2, 1, 6) ? "/api/extensions/tailscale" : "/api/network/tailscale" }
    /// The Tailscale status key: `status` before 2.1.4, `state` later.
    public var tailscaleStateKey: String { atLeast(2, 1, 4) ? "state" : "status" }
    /// Change-password request shape: `{currentPassword,password}` on multi-user firmware.
    public var changePasswordNeedsCurrentPassword: Bool { isMultiUser }
    /// 2.2.1+: image mounts take a `cdrom` flag.
    public var mountSupportsCDROM: Bool { atLeast(2, 2, 1) }

    /// Whether the firmware has `endpoint`.
    public func supports(_ endpoint: APIEndpoint) -> Bool {
        if version < endpoint.since { return false }
        if let until = endpoint.until, version > until { return false }
        if endpoint.multiUserOnly && !isMultiUser { return false }
        return true
    }

    /// Throws `unsupported` (nothing is sent) when the firmware lacks `endpoint`.
    public func require(_ endpoint: APIEndpoint, device: String? = nil) throws(NanoKVMError) {
        guard supports(endpoint) else {
            var range = "since \(endpoint.since)"
            if endpoint.multiUserOnly { range = "only on multi-user firmware (after 2.5.0)" }
            if let until = endpoint.until { range = "\(endpoint.since)–\(until)" }
            throw NanoKVMError(
                .unsupported, "firmware \(versionString) does not have this endpoint (\(range))",
                method: endpoint.method, path: endpoint.path, device: device)
        }
    }
}
