// What `NanoKVMClient.connect` needs: where the device is, how to log in, how to trust it.

/// The device's origin: scheme, host and port. API paths are appended to it.
public struct DeviceAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable { case http, https }

    public let scheme: Scheme
    /// Host name or IP address (IPv6 without brackets).
    public let host: String
    public let port: Int

    public init(scheme: Scheme, host: String, port: Int? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port ?? (scheme == .https ? 443 : 80)
    }

    /// Accepts `http://host[:port][/]`, `https://…` and a bare `host[:port]` (http). IPv6
    /// literals go in brackets. A path other than `/` is refused (`usage`).
    public init(parsing target: String) throws(NanoKVMError) {
        var text = Substring(target)
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        var scheme = Scheme.http
        if let range = text.firstRange(of: "://") {
            let name = text[..<range.lowerBound].lowercased()
            switch name {
            case "http", "ws": scheme = .http
            case "https", "wss": scheme = .https
            default: throw NanoKVMError(.usage, "unsupported URL scheme '\(name)' in '\(target)' (use http or https)")
            }
            text = text[range.upperBound...]
        }
        if let slash = text.firstIndex(of: "/") {
            let path = text[slash...]
            guard path == "/" else {
                throw NanoKVMError(.usage, "device URL '\(target)' must not have a path (use http://host[:port])")
            }
            text = text[..<slash]
        }
        guard !text.contains("@") else {
            throw NanoKVMError(.usage, "device URL '\(target)' must not carry credentials; use the user/password options")
        }
        var host: Substring
        var portText: Substring?
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else { throw NanoKVMError(.usage, "bad IPv6 address in '\(target)'") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if after.first == ":" { portText = after.dropFirst() } else if !after.isEmpty {
                throw NanoKVMError(.usage, "bad device address '\(target)'")
            }
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty, !host.contains(" ") else { throw NanoKVMError(.usage, "no host in device address '\(target)'") }
        var port: Int?
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw NanoKVMError(.usage, "bad port in device address '\(target)'")
            }
            port = value
        }
        self.init(scheme: scheme, host: String(host), port: port)
    }

    var isDefaultPort: Bool { port == (scheme == .https ? 443 : 80) }

    var hostForURL: String { host.contains(":") ? "[\(host)]" : host }

    /// `http://host[:port]` without a trailing slash.
    public var baseURL: String {
        isDefaultPort ? "\(scheme.rawValue)://\(hostForURL)" : "\(scheme.rawValue)://\(hostForURL):\(port)"
    }

    /// A short name for people: the host, with `:port` when it is not the scheme's default.
    public var displayName: String { hostHeader }

    /// The WebSocket URL of `path`.
    func webSocketURL(_ path: String) -> String {
        let ws = scheme == .https ? "wss" : "ws"
        return isDefaultPort ? "\(ws)://\(hostForURL)\(path)" : "\(ws)://\(hostForURL):\(port)\(path)"
    }

    /// The `Host` header value.
    var hostHeader: String { isDefaultPort ? hostForURL : "\(hostForURL):\(port)" }

    public var description: String { baseURL }
}

/// How to verify the device's TLS certificate (https only).
public enum TLSTrust: Sendable, Equatable {
    /// The system trust store and host name verification (default).
    case system
    /// No verification at all (`insecure`).
    case insecure
    /// Trust exactly the CA certificates in this PEM file (host name still verified).
    case certificateAuthority(pemFile: String)
    /// Trust exactly the certificate whose DER encoding has this SHA-256 (hex, colons allowed).
    /// The device's self-signed certificate names no stable host, so the host name is not checked.
    case pinnedSHA256(String)
}

/// Options for `NanoKVMClient.connect`. The password is kept in memory only for the
/// transparent re-login after a 401; it is never logged, printed or written anywhere.
public struct ConnectionOptions: Sendable {
    public var address: DeviceAddress
    public var username: String
    /// Logs in with this password. Nil together with a nil `token` assumes a device with
    /// authentication disabled.
    public var password: String?
    /// Reuses a token: no login is made. Without a password a rejected token raises `auth`.
    public var token: String?
    public var trust: TLSTrust
    /// Per-request timeout for ordinary calls; slow calls (paste, long presses) add their own time.
    public var timeout: Duration
    /// Force the WebSocket protocol generation instead of deriving it from the version.
    public var protocolSelection: ProtocolSelection
    /// What an earlier connection with `token` found (`client.knownFirmware`). With both, the
    /// client is ready at once: `/api/vm/info` is read in the background, and a call whose
    /// form depends on the firmware waits for it (a changed version is noticed there).
    public var knownFirmware: KnownFirmware?

    public init(
        address: DeviceAddress, username: String = "admin", password: String? = nil, token: String? = nil,
        trust: TLSTrust = .system, timeout: Duration = .seconds(10), protocolSelection: ProtocolSelection = .auto
    ) {
        self.address = address
        self.username = username
        self.password = password
        self.token = token
        self.trust = trust
        self.timeout = timeout
        self.protocolSelection = protocolSelection
    }

    /// Parses `target` with `DeviceAddress(parsing:)`.
    public init(
        url target: String, username: String = "admin", password: String? = nil, token: String? = nil,
        trust: TLSTrust = .system, timeout: Duration = .seconds(10), protocolSelection: ProtocolSelection = .auto
    ) throws(NanoKVMError) {
        self.init(
            address: try DeviceAddress(parsing: target), username: username, password: password, token: token,
            trust: trust, timeout: timeout, protocolSelection: protocolSelection)
    }
}

extension ConnectionOptions: CustomStringConvertible {
    /// Never shows the password or the token.
    public var description: String {
        "ConnectionOptions(\(address.baseURL), user: \(username), password: \(password == nil ? "none" : "***"), token: \(token == nil ? "none" : "***"))"
    }
}

/// The firmware facts a client derives while connecting, small enough to keep next to a cached
/// token, so the next run with that token can skip reading them again.
public struct KnownFirmware: Sendable, Equatable {
    /// The application version exactly as the device reported it.
    public var versionString: String
    /// Whether the device runs the multi-user firmware (main, 2.5.0+ with `/api/auth/users`).
    public var isMultiUser: Bool

    public init(versionString: String, isMultiUser: Bool) {
        self.versionString = versionString
        self.isMultiUser = isMultiUser
    }

    /// One line: `firmware <version> multi-user|single-user`.
    public var line: String { "firmware \(versionString) \(isMultiUser ? "multi-user" : "single-user")" }

    /// Reads `line`; nil for anything else (an older cache file, a damaged one).
    public init?(line: String) {
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[0] == "firmware", FirmwareVersion(parsing: String(parts[1])) != nil,
            parts[2] == "multi-user" || parts[2] == "single-user"
        else { return nil }
        self.init(versionString: String(parts[1]), isMultiUser: parts[2] == "multi-user")
    }
}
