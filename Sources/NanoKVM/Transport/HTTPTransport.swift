// One HTTP exchange with the device over AsyncHTTPClient, and the mapping of every failure
// to a NanoKVMError kind. Authentication (the cookie, re-login) lives in Session.swift;
// envelopes in Envelope.swift.

import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The body of a request.
enum RequestBody: Sendable {
    /// `Content-Type: application/json` (the device's form decoding is never wanted, §2.2).
    case json(JSONValue)
    /// Pre-encoded bytes with their content type (multipart uploads).
    case bytes([UInt8], contentType: String)
}

/// A request as the client builds it.
struct HTTPRequestSpec: Sendable {
    var method: HTTPMethod
    /// Path plus query, starting with `/`.
    var path: String
    var body: RequestBody?
    var headers: [(name: String, value: String)] = []
    var timeout: Duration
    /// Largest body accepted in the answer.
    var responseLimit: Int = 16 << 20
}

/// A complete answer.
struct HTTPResult: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
}

/// Process-wide AsyncHTTPClient. It is never shut down (so a forgotten `close()` cannot trip
/// AsyncHTTPClient's deinit check); TLS settings travel with each request, which also keys its
/// connection pool, so devices with different trust settings never share a connection.
enum SharedHTTPClient {
    static let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration())

    static func configuration() -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        // Redirects are reported, not followed: the only ones the device sends are the HTTP→HTTPS
        // switch (handled at connect time) and trailing-slash fixes (we use the right paths).
        configuration.redirectConfiguration = .disallow
        configuration.httpVersion = .http1Only
        configuration.decompression = .disabled
        configuration.timeout = .init(connect: .seconds(10), read: nil)
        // Fail at once on "connection refused" instead of retrying until the deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.idleTimeout = .seconds(30)
        return configuration
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        // Saturate instead of trapping on absurd durations.
        let nanos = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if nanos.overflow { return .nanoseconds(seconds < 0 ? Int64.min : Int64.max) }
        let total = nanos.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000)
        if total.overflow { return .nanoseconds(seconds < 0 ? Int64.min : Int64.max) }
        return .nanoseconds(total.partialValue)
    }

    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// CLOCK_MONOTONIC seconds, the clock the Lua scheduler (`kvm.now()`) uses.
public enum MonotonicClock {
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// Sends requests to one device.
struct HTTPTransport: Sendable {
    let address: DeviceAddress
    let tls: TLSSettings

    var httpClient: HTTPClient { tls.pinnedSHA256.map(PinnedHTTPClients.client(for:)) ?? SharedHTTPClient.client }

    var device: String { address.baseURL }

    func makeRequest(_ spec: HTTPRequestSpec, cookie: String?) throws(NanoKVMError) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: address.baseURL + spec.path)
        request.method = spec.method
        request.tlsConfiguration = tls.configuration
        request.headers.add(name: "Accept", value: "application/json, */*")
        request.headers.add(name: "User-Agent", value: "kvmlua")
        if let cookie { request.headers.add(name: "Cookie", value: "nano-kvm-token=\(cookie)") }
        for header in spec.headers { request.headers.add(name: header.name, value: header.value) }
        switch spec.body {
        case .none:
            break
        case .json(let value):
            let bytes: [UInt8]
            do {
                bytes = try value.serializedBytes()
            } catch {
                throw NanoKVMError(.usage, "request body is not valid JSON: \(error)", method: spec.method.rawValue, path: spec.path, device: device)
            }
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: bytes))
        case .bytes(let bytes, let contentType):
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: bytes))
        }
        return request
    }

    /// Sends one request and reads the whole answer, whatever its status.
    func perform(_ spec: HTTPRequestSpec, cookie: String?) async throws(NanoKVMError) -> HTTPResult {
        let request = try makeRequest(spec, cookie: cookie)
        do {
            try Task.checkCancellation()
            let response = try await httpClient.execute(request, deadline: .now() + spec.timeout.timeAmount)
            var collected = try await response.body.collect(upTo: spec.responseLimit)
            let bytes = collected.readBytes(length: collected.readableBytes) ?? []
            return HTTPResult(status: Int(response.status.code), headers: response.headers, body: bytes)
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw NanoKVMError(
                .protocol, "answer larger than \(spec.responseLimit) bytes", method: spec.method.rawValue, path: spec.path,
                device: device)
        } catch {
            throw TransportErrors.map(error, method: spec.method.rawValue, path: spec.path, device: device, timeout: spec.timeout)
        }
    }

    /// Starts a request and returns as soon as the head arrived; the caller streams the body.
    func start(_ spec: HTTPRequestSpec, cookie: String?, deadline: NIODeadline) async throws(NanoKVMError) -> HTTPClientResponse {
        let request = try makeRequest(spec, cookie: cookie)
        do {
            try Task.checkCancellation()
            return try await httpClient.execute(request, deadline: deadline)
        } catch {
            throw TransportErrors.map(error, method: spec.method.rawValue, path: spec.path, device: device, timeout: spec.timeout)
        }
    }
}

/// Maps errors thrown by AsyncHTTPClient, NIO and NIOSSL to NanoKVMError kinds.
enum TransportErrors {
    static func map(_ error: any Error, method: String?, path: String?, device: String?, timeout: Duration?) -> NanoKVMError {
        func make(_ kind: NanoKVMError.Kind, _ message: String) -> NanoKVMError {
            NanoKVMError(kind, message, method: method, path: path, device: device)
        }
        if let error = error as? NanoKVMError {
            var copy = error
            if copy.method == nil { copy.method = method }
            if copy.path == nil { copy.path = path }
            if copy.device == nil { copy.device = device }
            return copy
        }
        if error is CancellationError { return make(.cancelled, "cancelled") }
        if let error = error as? HTTPClientError {
            switch error {
            case .cancelled, .requestStreamCancelled:
                return make(.cancelled, "cancelled")
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                if Task.isCancelled { return make(.cancelled, "cancelled") }
                let limit = timeout.map { " after \(formatSeconds($0))" } ?? ""
                return make(.timeout, "no answer\(limit)")
            case .connectTimeout:
                return make(.timeout, "connecting timed out")
            case .tlsHandshakeTimeout:
                return make(.timeout, "TLS handshake timed out")
            case .remoteConnectionClosed:
                return make(.transport, "the device closed the connection")
            case .uncleanShutdown:
                return make(.transport, "the connection ended uncleanly")
            case .invalidURL, .emptyHost, .emptyScheme:
                return make(.usage, "invalid device URL")
            default:
                return make(.transport, "HTTP failure: \(error)")
            }
        }
        if let error = error as? NIOSSLError {
            return make(.transport, "TLS failure: \(describeTLS(error))")
        }
        if let error = error as? BoringSSLError {
            return make(.transport, "TLS failure: \(error)")
        }
        if let error = error as? NIOSSLExtraError {
            return make(.transport, "TLS failure: \(error)")
        }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first {
                return make(.transport, "cannot connect to \(error.host):\(error.port): \(describeSocketError(first.error))")
            }
            if let dnsError = error.dnsAAAAError ?? error.dnsAError {
                return make(.transport, "cannot resolve \(error.host): \(dnsError)")
            }
            return make(.transport, "cannot connect to \(error.host):\(error.port)")
        }
        if let error = error as? IOError {
            return make(.transport, describeSocketError(error))
        }
        if let error = error as? ChannelError {
            switch error {
            case .connectTimeout: return make(.timeout, "connecting timed out")
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed: return make(.transport, "the connection was closed")
            default: return make(.transport, "connection failure: \(error)")
            }
        }
        if let error = error as? SocketAddressError {
            return make(.transport, "cannot resolve the device address: \(error)")
        }
        let text = String(describing: error)
        if text.localizedLowercaseContains("certificate") || text.localizedLowercaseContains("ssl") {
            return make(.transport, "TLS failure: \(text)")
        }
        return make(.transport, text)
    }

    static func describeSocketError(_ error: any Error) -> String {
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ECONNRESET: return "connection reset"
            case EHOSTUNREACH: return "host unreachable"
            case ENETUNREACH: return "network unreachable"
            case ETIMEDOUT: return "connection timed out"
            default: return "\(io)"
            }
        }
        return "\(error)"
    }

    static func describeTLS(_ error: NIOSSLError) -> String {
        switch error {
        case .handshakeFailed(let inner): return "handshake failed (\(inner)); is the certificate trusted? (insecure, ca or fingerprint options)"
        default: return "\(error)"
        }
    }

    static func formatSeconds(_ duration: Duration) -> String {
        let seconds = duration.seconds
        if seconds == seconds.rounded() { return "\(Int(seconds)) s" }
        return "\((seconds * 10).rounded() / 10) s"
    }
}

extension String {
    fileprivate func localizedLowercaseContains(_ needle: String) -> Bool {
        lowercased().firstRange(of: needle) != nil
    }
}
