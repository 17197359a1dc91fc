// The simulated device's request pipeline, in the real server's order (Gin, §2.3, §12.1–4):
// test-only inspection routes, injected faults, route match (404 / trailing-slash redirect),
// authentication (401), role (403), then the endpoint handler.

import Foundation
internal import NIOCore
internal import NIOHTTP1
import NanoKVM
import Synchronization

/// Behaviour switches picked from the application version (§11.3).
struct Profile: Sendable {
    let version: ApplicationVersion

    init(_ text: String) { version = ApplicationVersion(text) }

    func atLeast(_ v: String) -> Bool { version.atLeast(v) }
    /// 2.0.x paths (`/api/storage/images`, `/api/vm/gpio/led`, `/api/firmware/*`).
    var oldPaths: Bool { !atLeast("2.1.0") }
    /// sipeed main after 2.5.0: multi-user, roles, cookie-only login, session revocation.
    var multiUser: Bool { atLeast("2.5.1") }
    var binaryWebSocket: Bool { atLeast("2.3.2") }
    var webSocketDeadline: Bool { atLeast("2.5.0") }
    var releaseOnClose: Bool { atLeast("2.4.1") }
    var mjpegContentLength: Bool { atLeast("2.3.0") }
    var detectToggle: Bool { !atLeast("2.2.3") }
    var loginDelays: Bool { atLeast("2.3.0") }
    var oldLoginCodes: Bool { !atLeast("2.1.6") }
    var pasteDelayMilliseconds: Double { atLeast("2.3.0") ? 30 : 50 }
    var pasteRuneLimit: Bool { atLeast("2.5.0") }
    var pasteShiftExtraReports: Bool { !atLeast("2.2.8") }
    var ipsArray: Bool { atLeast("2.2.6") }
    var virtualMediaKey: Bool { atLeast("2.3.1") }
    var oldTailscale: Bool { !atLeast("2.1.6") }
    var wolBlankEntry: Bool { !atLeast("2.4.2") }
    var legacyModifierFlags: Bool { !atLeast("2.1.3") }
}

/// What a route requires (§5): nothing, any session, or role admin (on main).
enum RouteAuth: Sendable {
    case none
    case session
    case admin
}

struct RouteContext: Sendable {
    var request: SimRequest
    var principal: Principal?
    var parameters: [String: String]
}

struct Route: Sendable {
    typealias Handler = @Sendable (Device, RouteContext) async -> SimResponse

    var method: String
    var segments: [Substring]
    var auth: RouteAuth
    var webSocket: Bool
    var handler: Handler

    init(_ method: String, _ path: String, _ auth: RouteAuth, webSocket: Bool = false, _ handler: @escaping Handler) {
        self.method = method
        self.segments = path.split(separator: "/", omittingEmptySubsequences: false)
        self.auth = auth
        self.webSocket = webSocket
        self.handler = handler
    }

    func match(_ path: String) -> [String: String]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == segments.count else { return nil }
        var parameters: [String: String] = [:]
        for (pattern, part) in zip(segments, parts) {
            if pattern.hasPrefix(":") {
                guard !part.isEmpty else { return nil }
                parameters[String(pattern.dropFirst())] = String(part)
            } else if pattern != part {
                return nil
            }
        }
        return parameters
    }

    var isStatic: Bool { !segments.contains { $0.hasPrefix(":") } }
}

final class Device: Sendable {
    let configuration: SimulatorConfiguration
    let profile: Profile
    let state: Mutex<DeviceState>
    let host: VirtualHost
    let capture: CaptureLoop
    let events: EventHub
    let routes: [Route]
    let startDate = Date()

    init(configuration: SimulatorConfiguration) {
        self.configuration = configuration
        self.profile = Profile(configuration.effectiveApplicationVersion)
        self.state = Mutex(DeviceState(configuration: configuration))
        let host = VirtualHost(
            width: configuration.width, height: configuration.height, layout: configuration.hostLayout,
            poweredOn: configuration.hostPoweredOn, scene: configuration.scene, timeScale: configuration.timeScale,
            identity: Machine.Identity(
                hostname: configuration.targetHostname, user: configuration.targetUser, password: configuration.targetPassword,
                clock: configuration.clock))
        self.host = host
        let events = EventHub()
        self.events = events
        self.capture = CaptureLoop(host: host, fps: configuration.fps) { result in
            events.captureResult(result)
        }
        self.routes = Device.buildRoutes(Profile(configuration.effectiveApplicationVersion), generation: configuration.generation)
        host.ledObservers.withLock { observers in
            observers.append { input in events.ledsChanged(input) }
        }
    }

    // MARK: Responses

    static let jsonContentType = ("Content-Type", "application/json; charset=utf-8")

    static func json(_ status: HTTPResponseStatus, _ value: JSONValue) -> SimResponse {
        SimResponse(status: status, headers: [jsonContentType], body: GoJSON.encode(value))
    }

    func ok(_ data: JSONValue = .null) -> SimResponse {
        Self.json(.ok, ["code": 0, "msg": "success", "data": data])
    }

    func fail(_ code: Int, _ message: String) -> SimResponse {
        Self.json(.ok, ["code": .integer(Int64(code)), "msg": .string(message), "data": .null])
    }

    static func plain(_ status: HTTPResponseStatus, _ text: String, contentType: String = "text/plain") -> SimResponse {
        SimResponse(status: status, headers: [("Content-Type", contentType)], body: Array(text.utf8))
    }

    static var notFound: SimResponse { plain(.notFound, "404 page not found") }
    static var unauthorized: SimResponse { json(.unauthorized, "unauthorized") }
    static var forbidden: SimResponse { json(.forbidden, "forbidden") }
    /// A recovered handler panic: HTTP 500 with an empty body.
    static var panicked: SimResponse { SimResponse(status: .internalServerError) }

    /// Sleeps for device work (GPIO presses, paste pacing…), scaled by `timeScale`.
    func deviceDelay(milliseconds: Double) async {
        let scaled = milliseconds * configuration.timeScale
        guard scaled > 0, scaled.isFinite else { return }
        // A client may ask for any press duration; cap the wait at a day instead of trapping.
        try? await Task.sleep(for: .milliseconds(min(scaled, 86_400_000)))
    }

    /// Sleeps for a deliberate login delay, scaled by `loginDelayScale`.
    func loginDelay(seconds: Double) async {
        let scaled = seconds * configuration.loginDelayScale
        guard scaled > 0, scaled.isFinite else { return }
        try? await Task.sleep(for: .milliseconds(min(scaled, 3600) * 1000))
    }

    // MARK: Pipeline

    func findRoute(method: String, path: String) -> (Route, [String: String])? {
        var parameterized: (Route, [String: String])?
        for route in routes where route.method == method {
            if let parameters = route.match(path) {
                if route.isStatic { return (route, parameters) }
                if parameterized == nil { parameterized = (route, parameters) }
            }
        }
        return parameterized
    }

    func process(_ request: SimRequest) async -> SimResponse {
        if request.path.hasPrefix("/__sim/") {
            return configuration.inspection ? await inspect(request) : Self.notFound
        }
        if let fault = takeRequestFault(path: request.path) {
            switch fault {
            case .http500: return Self.panicked
            case .malformedJSON:
                return SimResponse(status: .ok, headers: [Self.jsonContentType], body: Array(#"{"code":0,"msg":"success","data":"#.utf8))
            case .dropConnection: return .drop()
            case .notAnEnvelope:
                return SimResponse(status: .ok, headers: [Self.jsonContentType], body: Array(#"{"hello":1}"#.utf8))
            case let .delay(seconds, _):
                if seconds.isFinite, seconds > 0 { try? await Task.sleep(for: .milliseconds(min(seconds, 3600) * 1000)) }
            default: break
            }
        }
        var response = await route(request)
        if configuration.authenticationDisabled, profile.atLeast("2.1.6"), request.header("Origin") != nil
        {
            response.headers.append(("Access-Control-Allow-Origin", "*"))
            response.headers.append(("Vary", "Origin"))
        }
        return response
    }

    private func route(_ request: SimRequest) async -> SimResponse {
        if configuration.authenticationDisabled, request.method == "OPTIONS", request.header("Origin") != nil,
            let wanted = request.header("Access-Control-Request-Method")
        {
            var response = SimResponse(status: .noContent)
            response.headers = [
                ("Access-Control-Allow-Methods", wanted.uppercased()),
                ("Access-Control-Allow-Origin", "*"),
                ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            ]
            if let headers = request.header("Access-Control-Request-Headers") {
                response.headers.append(("Access-Control-Allow-Headers", headers))
            }
            return response
        }
        guard let (route, parameters) = findRoute(method: request.method, path: request.path) else {
            if let redirect = trailingSlashRedirect(request) { return redirect }
            if request.method == "GET", request.path == "/" || request.path == "/index.html" {
                return Self.plain(.ok, webPage, contentType: "text/html; charset=utf-8")
            }
            return Self.notFound
        }
        var principal: Principal?
        if route.auth != .none {
            guard let session = authenticate(request) else { return Self.unauthorized }
            if route.auth == .admin, profile.multiUser, session.role != .admin { return Self.forbidden }
            principal = session
        }
        return await route.handler(self, RouteContext(request: request, principal: principal, parameters: parameters))
    }

    /// Gin's RedirectTrailingSlash: 301 for GET, 307 for other methods.
    private func trailingSlashRedirect(_ request: SimRequest) -> SimResponse? {
        guard request.path.count > 1 else { return nil }
        let alternative = request.path.hasSuffix("/") ? String(request.path.dropLast()) : request.path + "/"
        guard findRoute(method: request.method, path: alternative) != nil else { return nil }
        let location = request.rawQuery.isEmpty ? alternative : alternative + "?" + request.rawQuery
        if request.method == "GET" {
            var response = Self.plain(
                .movedPermanently, "<a href=\"\(location)\">Moved Permanently</a>.\n\n", contentType: "text/html; charset=utf-8")
            response.headers.append(("Location", location))
            return response
        }
        return SimResponse(status: .temporaryRedirect, headers: [("Location", location)])
    }

    private func takeRequestFault(path: String) -> SimulatorFault? {
        state.withLock { s -> SimulatorFault? in
            guard let index = s.faults.firstIndex(where: { fault in
                guard fault.isRequestFault else { return false }
                guard let prefix = fault.path else { return true }
                return path.hasPrefix(prefix)
            }) else { return nil }
            return s.faults.remove(at: index)
        }
    }

    var webPage: String {
        let title = state.withLock { $0.webTitle } ?? "NanoKVM"
        return "<!doctype html><html><head><meta charset=\"utf-8\"><title>\(title)</title></head>"
            + "<body><p>NanoKVM (simulated by kvmlua nanokvm-sim, application \(configuration.effectiveApplicationVersion))</p></body></html>\n"
    }
}

extension Device: SimRequestHandler {
    func handle(_ request: SimRequest) async -> SimResponse {
        let response = await process(request)
        if !request.path.hasPrefix("/__sim/") {
            let record = SimulatorRequestRecord(
                method: request.method, path: request.path, hadCookie: request.cookie("nano-kvm-token") != nil,
                origin: request.header("Origin"), status: response.dropConnection ? 0 : Int(response.status.code))
            state.withLock { s in
                if s.requestLog.count >= 10_000 { s.requestLog.removeFirst(5_000) }
                s.requestLog.append(record)
                if response.upgradeToWebSocket { s.lastWebSocketOrigin = request.header("Origin") }
            }
        }
        if configuration.logRequests {
            FileHandle.standardError.write(Data("\(request.method) \(request.path) -> \(response.status.code)\n".utf8))
        }
        return response
    }
}
