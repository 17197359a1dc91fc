// Login, the token, and the single transparent re-login after HTTP 401 (protocol §4).

import NIOHTTP1

/// User name and password, kept in memory only so the client can log in again after the
/// device restarted or the token expired. Never printed.
struct Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    var username: String
    var password: String
    var description: String { "Credentials(\(username), ***)" }
    var debugDescription: String { description }
}

/// What a successful login produced.
struct LoginOutcome: Sendable, Equatable {
    /// The token for the `nano-kvm-token` cookie; nil when the device has authentication disabled.
    var token: String?
    /// The device runs with `authentication: disable`.
    var authenticationDisabled: Bool
    /// The token came only from `Set-Cookie` (multi-user firmware after 2.5.0).
    var tokenFromCookieOnly: Bool
}

enum Login {
    /// Logs in once. A redirect answer (HTTP→HTTPS) is returned as `.redirect` so `connect`
    /// can switch to the HTTPS address.
    enum Answer: Sendable {
        case success(LoginOutcome)
        case redirect(location: String)
    }

    static func perform(_ transport: HTTPTransport, _ credentials: Credentials, timeout: Duration) async throws(NanoKVMError) -> Answer {
        let field = try PasswordObfuscation.encrypt(credentials.password)
        let body: JSONValue = ["username": .string(credentials.username), "password": .string(field)]
        let spec = HTTPRequestSpec(method: .POST, path: APIEndpoint.login.path, body: .json(body), timeout: timeout)
        let result = try await transport.perform(spec, cookie: nil)
        func fail(_ kind: NanoKVMError.Kind, _ message: String, code: Int? = nil) -> NanoKVMError {
            NanoKVMError(kind, message, code: code, status: result.status, method: "POST", path: spec.path, device: transport.device)
        }
        switch result.status {
        case 200:
            break
        case 301, 302, 307, 308:
            return .redirect(location: result.headers.first(name: "Location") ?? "")
        case 404:
            throw fail(.protocol, "no login endpoint here (HTTP 404): is this a NanoKVM?")
        case 500...599:
            throw fail(.api, "the device failed while checking the login (HTTP \(result.status))")
        default:
            throw fail(.protocol, "unexpected HTTP \(result.status) answer to the login")
        }
        var envelope: Envelope
        do {
            envelope = try Envelope.parse(result.body)
        } catch {
            var copy = error
            copy.status = result.status; copy.method = "POST"; copy.path = spec.path; copy.device = transport.device
            throw copy
        }
        guard envelope.code == 0 else {
            let reason = envelope.message.isEmpty ? "login refused" : envelope.message
            // −5 is the lockout from 2.3.5 on; 2.1.0–2.1.5 used −5 for "generate token failed".
            if envelope.code == -5, reason.lowercased().contains("lock") {
                throw fail(.auth, "account locked: \(reason)", code: envelope.code)
            }
            throw fail(.auth, reason, code: envelope.code)
        }
        // ≤2.5.0: data.token; main: data null and the token only in Set-Cookie (§4.2).
        let bodyToken = envelope.data["token"]?.stringValue
        let cookieToken = cookieValue(named: "nano-kvm-token", in: result.headers)
        if let bodyToken, !bodyToken.isEmpty {
            if bodyToken == "disabled" {
                return .success(LoginOutcome(token: nil, authenticationDisabled: true, tokenFromCookieOnly: false))
            }
            return .success(LoginOutcome(token: bodyToken, authenticationDisabled: false, tokenFromCookieOnly: false))
        }
        if let cookieToken, !cookieToken.isEmpty {
            return .success(LoginOutcome(token: cookieToken, authenticationDisabled: false, tokenFromCookieOnly: true))
        }
        // main with `authentication: disable`: success, no token anywhere.
        envelope.data = .null
        return .success(LoginOutcome(token: nil, authenticationDisabled: true, tokenFromCookieOnly: false))
    }

    /// The value of cookie `name` in the answer's `Set-Cookie` headers.
    static func cookieValue(named name: String, in headers: HTTPHeaders) -> String? {
        for header in headers[canonicalForm: "Set-Cookie"] {
            let pair = header.split(separator: ";", maxSplits: 1).first ?? ""
            guard let equals = pair.firstIndex(of: "=") else { continue }
            let key = pair[..<equals].trimmingSpaces()
            guard key == name else { continue }
            var value = pair[pair.index(after: equals)...].trimmingSpaces()
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var view = self
        while view.first == " " || view.first == "\t" { view = view.dropFirst() }
        while view.last == " " || view.last == "\t" { view = view.dropLast() }
        return String(view)
    }
}

/// The session's token and the single-flight re-login.
actor Session {
    private(set) var token: String?
    /// Bumped at every successful (re-)login, so a request that failed with an older token
    /// does not log in again when another request already did.
    private(set) var tokenGeneration = 0
    private(set) var loginCount = 0
    private var credentials: Credentials?
    private var reloginTask: Task<Result<Void, NanoKVMError>, Never>?
    private let transport: HTTPTransport
    private let timeout: Duration

    init(transport: HTTPTransport, credentials: Credentials?, token: String?, timeout: Duration) {
        self.transport = transport
        self.credentials = credentials
        self.token = token
        self.timeout = timeout
    }

    var canLogIn: Bool { credentials != nil }

    func snapshot() -> (token: String?, generation: Int) { (token, tokenGeneration) }

    func adopt(_ outcome: LoginOutcome) {
        token = outcome.token
        tokenGeneration += 1
        loginCount += 1
    }

    func forgetToken() {
        token = nil
        tokenGeneration += 1
    }

    func updateCredentials(username: String? = nil, password: String) {
        guard var current = credentials else { return }
        if let username { current.username = username }
        current.password = password
        credentials = current
    }

    /// Logs in again after a 401 seen with token generation `generation`. Concurrent callers
    /// share one login; a caller whose token is already outdated just retries.
    func relogin(after generation: Int) async -> Result<Void, NanoKVMError> {
        if generation != tokenGeneration { return .success(()) }
        if let reloginTask { return await reloginTask.value }
        guard let credentials else {
            return .failure(NanoKVMError(
                .auth, "the device rejected the token (expired or revoked) and no password is known to log in again",
                status: 401, device: transport.device))
        }
        let transport = self.transport
        let timeout = self.timeout
        let task = Task<Result<Void, NanoKVMError>, Never> {
            let result: Result<Void, NanoKVMError>
            do throws(NanoKVMError) {
                switch try await Login.perform(transport, credentials, timeout: timeout) {
                case .success(let outcome):
                    self.adopt(outcome)
                    result = .success(())
                case .redirect(let location):
                    result = .failure(NanoKVMError(
                        .transport, "the device now redirects to \(location) (HTTPS switched on?); connect again with that URL",
                        method: "POST", path: APIEndpoint.login.path, device: transport.device))
                }
            } catch {
                result = .failure(error)
            }
            self.reloginTask = nil
            return result
        }
        reloginTask = task
        return await task.value
    }
}
