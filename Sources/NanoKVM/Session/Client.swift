// NanoKVMClient: one logged-in connection to a device. It logs in, detects the firmware,
// sends every REST call through one path (version check, cookie, one re-login on 401,
// status and envelope mapping), and hands out the per-area APIs (`client.gpio`, …).

import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

public final class NanoKVMClient: Sendable {
    /// Where the device is (an `http://` target that redirected to HTTPS is the HTTPS address).
    public let address: DeviceAddress
    public let username: String
    /// Firmware version, generation and feature switches (for a reused session: as known from
    /// the earlier connection until `/api/vm/info` confirms or corrects it).
    public var profile: FirmwareProfile { state.withLock { $0.profile } }
    /// `/api/vm/info` as read while connecting; nil while a reused session has not read it yet.
    public var deviceInfo: DeviceInfo? { state.withLock { $0.deviceInfo } }
    /// What to keep next to the token for the next connection (`ConnectionOptions.knownFirmware`).
    public var knownFirmware: KnownFirmware {
        let profile = self.profile
        return KnownFirmware(versionString: profile.versionString, isMultiUser: profile.isMultiUser)
    }
    /// Default per-request timeout.
    public let timeout: Duration

    let transport: HTTPTransport
    let session: Session
    let state: Mutex<ClientState>
    /// The shared MJPEG stream behind `frames` (FrameSource.swift).
    let frameHub = FrameHub()

    /// A reused session's background read of `/api/vm/info` (true when it succeeded), with the
    /// connection options it was made with (less the password, which the session keeps).
    let confirmation = Mutex<(task: Task<Bool, Never>, options: ConnectionOptions)?>(nil)

    struct ClientState {
        var profile: FirmwareProfile
        var deviceInfo: DeviceInfo?
        /// Frame detection as this client last set it (firmware ≥2.2.3 cannot report it).
        var frameDetection: Bool?
        var closed = false
        var nextResourceID = 0
        /// Open streams and WebSockets, closed by `close()`.
        var resources: [Int: @Sendable () -> Void] = [:]
    }

    public var generation: FirmwareGeneration { profile.generation }
    /// The application version string exactly as the device reported it.
    public var version: String { profile.versionString }
    public var baseURL: String { address.baseURL }
    var device: String { address.baseURL }

    init(
        address: DeviceAddress, username: String, profile: FirmwareProfile, deviceInfo: DeviceInfo?, timeout: Duration,
        transport: HTTPTransport, session: Session
    ) {
        self.address = address
        self.username = username
        self.state = Mutex(ClientState(profile: profile, deviceInfo: deviceInfo))
        self.timeout = timeout
        self.transport = transport
        self.session = session
    }

    // MARK: Connecting

    /// Logs in (or reuses `options.token`), reads `/api/vm/info` and detects the firmware.
    /// Raises `auth` on bad credentials, `transport` when the device cannot be reached.
    public static func connect(_ options: ConnectionOptions) async throws(NanoKVMError) -> NanoKVMClient {
        guard options.timeout > .zero else {
            throw NanoKVMError(.usage, "timeout must be positive", device: options.address.baseURL)
        }
        var address = options.address
        var redirects = 0
        while true {
            let tls = try TLSSetup.settings(for: options.trust, address: address)
            let transport = HTTPTransport(address: address, tls: tls)
            do {
                return try await connect(options, transport: transport)
            } catch let redirect as RedirectToHTTPS {
                // The device runs HTTPS and its port 80 redirects everything (§2.1).
                redirects += 1
                guard redirects == 1, let target = redirect.address else {
                    throw NanoKVMError(.transport, "the device redirects to '\(redirect.location)'", device: address.baseURL)
                }
                address = target
            } catch let error as NanoKVMError {
                throw error
            } catch {
                throw TransportErrors.map(error, method: nil, path: nil, device: address.baseURL, timeout: options.timeout)
            }
        }
    }

    /// Thrown inside `connect` when the first answer is an HTTP→HTTPS redirect.
    private struct RedirectToHTTPS: Error {
        let location: String
        var address: DeviceAddress? {
            guard location.lowercased().hasPrefix("https://") else { return nil }
            var rest = Substring(location.dropFirst("https://".count))
            if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
            return try? DeviceAddress(parsing: "https://" + rest)
        }
    }

    private static func connect(_ options: ConnectionOptions, transport: HTTPTransport) async throws -> NanoKVMClient {
        let credentials = options.password.map { Credentials(username: options.username, password: $0) }
        let session = Session(transport: transport, credentials: credentials, token: options.token, timeout: options.timeout)
        if options.token != nil, let known = options.knownFirmware, let version = FirmwareVersion(parsing: known.versionString),
            version.major == 2
        {
            // A reused session on a device whose firmware we know: ready at once. The first
            // call whose form depends on the firmware waits for the background confirmation.
            let profile = FirmwareProfile(
                versionString: known.versionString, version: version, isMultiUser: known.isMultiUser,
                selection: options.protocolSelection)
            let client = NanoKVMClient(
                address: transport.address, username: options.username, profile: profile, deviceInfo: nil,
                timeout: options.timeout, transport: transport, session: session)
            var confirming = options
            confirming.password = nil
            let reading = confirming
            client.confirmation.withLock { $0 = (Task { await client.confirmFirmware(reading) }, reading) }
            return client
        }
        var loginOutcome: LoginOutcome?
        if options.token == nil, let credentials {
            switch try await Login.perform(transport, credentials, timeout: options.timeout) {
            case .success(let outcome):
                await session.adopt(outcome)
                loginOutcome = outcome
            case .redirect(let location):
                throw RedirectToHTTPS(location: location)
            }
        }

        let (info, profile) = try await detectFirmware(
            options, transport: transport, session: session, multiUserFromLogin: loginOutcome?.tokenFromCookieOnly ?? false,
            known: nil)
        return NanoKVMClient(
            address: transport.address, username: options.username, profile: profile, deviceInfo: info,
            timeout: options.timeout, transport: transport, session: session)
    }

    /// Reads `/api/vm/info` and derives the firmware profile. `known` (what an earlier
    /// connection found) spares the multi-user probe while the version is unchanged.
    private static func detectFirmware(
        _ options: ConnectionOptions, transport: HTTPTransport, session: Session, multiUserFromLogin: Bool,
        known: KnownFirmware?
    ) async throws -> (DeviceInfo, FirmwareProfile) {
        // /api/vm/info exists in every version and answers every role (§11.2).
        let infoSpec = HTTPRequestSpec(method: .GET, path: APIEndpoint.info.path, timeout: options.timeout)
        let infoResult = try await authenticatedSend(infoSpec, transport: transport, session: session)
        if [301, 302, 307, 308].contains(infoResult.status) {
            throw RedirectToHTTPS(location: infoResult.headers.first(name: "Location") ?? "")
        }
        if infoResult.status == 401, options.password == nil, options.token == nil {
            throw NanoKVMError(
                .auth, "the device requires a password", status: 401, method: "GET", path: infoSpec.path, device: transport.device)
        }
        let infoData = try envelopeData(infoResult, spec: infoSpec, device: transport.device)
        let info = try DeviceInfo(data: infoData)

        var version = FirmwareVersion(parsing: info.version)
        if version == nil || version?.major != 2 {
            // `application` falls back to "1.0.0" when /kvmapp/version is missing (§6.2.1):
            // estimate the version from which routes exist instead.
            version = try await probeVersion(transport: transport, timeout: options.timeout) ?? version
        }
        guard let version else {
            throw NanoKVMError(
                .protocol, "cannot read the firmware version from '\(info.version)'", method: "GET", path: infoSpec.path,
                device: transport.device)
        }
        var multiUser = multiUserFromLogin
        if let known, known.versionString == info.version {
            multiUser = known.isMultiUser
        } else if !multiUser, version >= FirmwareVersion(2, 5, 0) {
            // Only the multi-user firmware has /api/auth/users; unauthenticated probes are
            // answered 401 (exists) or 404 (does not) before any authentication (§11.1).
            multiUser = try await routeExists(APIEndpoint.listUsers.path, transport: transport, timeout: options.timeout)
        }
        let profile = FirmwareProfile(
            versionString: info.version, version: version, isMultiUser: multiUser, selection: options.protocolSelection)
        return (info, profile)
    }

    /// The background half of a reused session: reads `/api/vm/info` and corrects the profile
    /// when the firmware changed since the session was saved. False when it failed (the next
    /// call that needs the firmware tries again and reports the error).
    func confirmFirmware(_ options: ConnectionOptions) async -> Bool {
        do {
            let (info, profile) = try await Self.detectFirmware(
                options, transport: transport, session: session, multiUserFromLogin: false, known: knownFirmware)
            state.withLock {
                $0.profile = profile
                $0.deviceInfo = info
            }
            return true
        } catch {
            return false
        }
    }

    /// Waits for a reused session's firmware confirmation (at once when there is none or it
    /// is done); when it failed, tries once more here so the error reaches the caller.
    func firmwareConfirmed() async throws(NanoKVMError) {
        guard let (task, options) = confirmation.withLock({ $0 }) else { return }
        if await task.value {
            confirmation.withLock { if $0?.task == task { $0 = nil } }
            return
        }
        let (info, profile): (DeviceInfo, FirmwareProfile)
        do {
            (info, profile) = try await Self.detectFirmware(
                options, transport: transport, session: session, multiUserFromLogin: false, known: knownFirmware)
        } catch var error as NanoKVMError {
            if error.kind == .auth, !(await session.canLogIn) {
                error.message = "the saved session was rejected (the device restarted or the token expired); log in with a password"
            }
            throw error
        } catch {
            throw TransportErrors.map(error, method: "GET", path: APIEndpoint.info.path, device: device, timeout: timeout)
        }
        state.withLock {
            $0.profile = profile
            $0.deviceInfo = info
        }
        confirmation.withLock { if $0?.task == task { $0 = nil } }
    }

    /// Route probing without a cookie (§11.1): the first route that exists bounds the version.
    static func probeVersion(transport: HTTPTransport, timeout: Duration) async throws(NanoKVMError) -> FirmwareVersion? {
        let probes: [(String, FirmwareVersion)] = [
            ("/api/hid/leds", FirmwareVersion(2, 5, 0)),
            ("/api/network/dns", FirmwareVersion(2, 4, 1)),
            ("/api/hid/shortcut/leader-key", FirmwareVersion(2, 3, 4)),
            ("/api/hid/shortcuts", FirmwareVersion(2, 3, 2)),
            ("/api/vm/autostart", FirmwareVersion(2, 3, 1)),
            ("/api/vm/hdmi", FirmwareVersion(2, 2, 8)),
            ("/api/vm/hostname", FirmwareVersion(2, 2, 6)),
            ("/api/hid/mode", FirmwareVersion(2, 2, 5)),
            ("/api/auth/account", FirmwareVersion(2, 1, 4)),
            ("/api/storage/image", FirmwareVersion(2, 1, 0)),
            ("/api/storage/images", FirmwareVersion(2, 0, 0)),
        ]
        for (path, version) in probes where try await routeExists(path, transport: transport, timeout: timeout) {
            return version
        }
        return nil
    }

    static func routeExists(_ path: String, transport: HTTPTransport, timeout: Duration) async throws(NanoKVMError) -> Bool {
        let result = try await transport.perform(HTTPRequestSpec(method: .GET, path: path, timeout: timeout), cookie: nil)
        return result.status != 404
    }

    /// Sends with the current token; on HTTP 401 logs in again once and repeats the request.
    static func authenticatedSend(_ spec: HTTPRequestSpec, transport: HTTPTransport, session: Session) async throws(NanoKVMError) -> HTTPResult {
        let (token, generation) = await session.snapshot()
        let first = try await transport.perform(spec, cookie: token)
        guard first.status == 401, await session.canLogIn else { return first }
        switch await session.relogin(after: generation) {
        case .success:
            break
        case .failure(var error):
            if error.method == nil { error.method = spec.method.rawValue; error.path = spec.path }
            throw error
        }
        let (renewed, _) = await session.snapshot()
        return try await transport.perform(spec, cookie: renewed)
    }

    /// Checks the HTTP status and the envelope; returns `data` or throws with every field filled.
    static func envelopeData(_ result: HTTPResult, spec: HTTPRequestSpec, device: String) throws(NanoKVMError) -> JSONValue {
        let envelope = try checkedEnvelope(result, spec: spec, device: device)
        guard envelope.code == 0 else {
            throw NanoKVMError(
                .api, envelope.message.isEmpty ? "request failed" : envelope.message, code: envelope.code, status: result.status,
                method: spec.method.rawValue, path: spec.path, device: device)
        }
        return envelope.data
    }

    /// Maps non-200 statuses to errors and parses the envelope (whatever its code).
    static func checkedEnvelope(_ result: HTTPResult, spec: HTTPRequestSpec, device: String) throws(NanoKVMError) -> Envelope {
        func fail(_ kind: NanoKVMError.Kind, _ message: String) -> NanoKVMError {
            NanoKVMError(kind, message, status: result.status, method: spec.method.rawValue, path: spec.path, device: device)
        }
        switch result.status {
        case 200:
            break
        case 401:
            throw fail(.auth, "unauthorized (the token was rejected)")
        case 403:
            throw fail(.permission, "forbidden: this account's role may not call it")
        case 404:
            throw fail(.api, "not found: the device has no such endpoint")
        case 301, 302, 303, 307, 308:
            let location = result.headers.first(name: "Location") ?? "?"
            throw fail(.transport, "the device redirects to \(location)")
        case 500...599:
            throw fail(.api, "the device failed (HTTP \(result.status))")
        default:
            throw fail(.protocol, "unexpected HTTP \(result.status)")
        }
        do {
            return try Envelope.parse(result.body)
        } catch {
            var copy = error
            copy.status = result.status
            copy.method = spec.method.rawValue
            copy.path = spec.path
            copy.device = device
            throw copy
        }
    }

    // MARK: Requests

    func checkOpen(_ method: String, _ path: String) throws(NanoKVMError) {
        if state.withLock({ $0.closed }) {
            throw NanoKVMError(.usage, "the device connection is closed", method: method, path: path, device: device)
        }
    }

    /// Sends `spec` with the session cookie and the single re-login on 401.
    func send(_ spec: HTTPRequestSpec) async throws(NanoKVMError) -> HTTPResult {
        try checkOpen(spec.method.rawValue, spec.path)
        try await firmwareConfirmed()
        return try await Self.authenticatedSend(spec, transport: transport, session: session)
    }

    /// Calls `endpoint` (checked against the firmware first) and returns the whole envelope,
    /// whatever its code.
    func callEnvelope(
        _ endpoint: APIEndpoint, path: String? = nil, query: String? = nil, body: RequestBody? = nil, timeout: Duration? = nil,
        headers: [(name: String, value: String)] = []
    ) async throws(NanoKVMError) -> Envelope {
        let fullPath = (path ?? endpoint.path) + (query.map { "?" + $0 } ?? "")
        try await firmwareConfirmed()
        try profile.require(endpoint, device: device)
        let method = HTTPMethod(rawValue: endpoint.method)
        var spec = HTTPRequestSpec(method: method, path: fullPath, body: body, timeout: timeout ?? self.timeout)
        spec.headers = headers
        let result = try await send(spec)
        return try Self.checkedEnvelope(result, spec: spec, device: device)
    }

    /// Calls `endpoint` and returns the envelope's `data`; a non-zero code raises `api`.
    @discardableResult
    func call(
        _ endpoint: APIEndpoint, path: String? = nil, body: RequestBody? = nil, timeout: Duration? = nil,
        headers: [(name: String, value: String)] = []
    ) async throws(NanoKVMError) -> JSONValue {
        let envelope = try await callEnvelope(endpoint, path: path, body: body, timeout: timeout, headers: headers)
        guard envelope.code == 0 else {
            throw apiError(envelope, endpoint: endpoint, path: path)
        }
        return envelope.data
    }

    func apiError(_ envelope: Envelope, endpoint: APIEndpoint, path: String? = nil) -> NanoKVMError {
        NanoKVMError(
            .api, envelope.message.isEmpty ? "request failed" : envelope.message, code: envelope.code, status: 200,
            method: endpoint.method, path: path ?? endpoint.path, device: device)
    }

    /// Raw access for `dev:request`: sends `body` as JSON and returns the envelope's `data`.
    /// Raises `api` on a non-zero code or HTTP error status, `protocol` when the answer is not
    /// an envelope. No firmware check is made.
    public func request(_ method: String, _ path: String, body: JSONValue? = nil, timeout: Duration? = nil) async throws(NanoKVMError) -> JSONValue {
        let verb = method.uppercased()
        guard ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(verb) else {
            throw NanoKVMError(.usage, "unsupported HTTP method '\(method)'", method: verb, path: path, device: device)
        }
        guard path.hasPrefix("/"), !path.contains(" "), !path.contains("\r"), !path.contains("\n") else {
            throw NanoKVMError(.usage, "path must start with '/' and contain no spaces: '\(path)'", method: verb, path: path, device: device)
        }
        let spec = HTTPRequestSpec(
            method: HTTPMethod(rawValue: verb), path: path, body: body.map { .json($0) }, timeout: timeout ?? self.timeout)
        let result = try await send(spec)
        return try Self.envelopeData(result, spec: spec, device: device)
    }

    // MARK: Session

    /// The current token (to cache it for a later `ConnectionOptions(token:)`); nil when the
    /// device has authentication disabled.
    public func currentToken() async -> String? { await session.token }

    /// How many logins this client made (the first one included); for diagnostics and tests.
    public func loginCount() async -> Int { await session.loginCount }

    /// Closes the streams and WebSocket sessions this client opened; later calls raise `usage`.
    /// The token stays valid on the device (use `auth.logout()` to revoke it).
    public func close() async {
        confirmation.withLock { $0?.task.cancel() }
        let closers = state.withLock { state -> [@Sendable () -> Void] in
            state.closed = true
            let list = Array(state.resources.values)
            state.resources.removeAll()
            return list
        }
        for close in closers { close() }
    }

    func register(_ close: @escaping @Sendable () -> Void) -> Int {
        state.withLock { state in
            state.nextResourceID += 1
            state.resources[state.nextResourceID] = close
            return state.nextResourceID
        }
    }

    func unregister(_ id: Int) {
        _ = state.withLock { $0.resources.removeValue(forKey: id) }
    }
}
