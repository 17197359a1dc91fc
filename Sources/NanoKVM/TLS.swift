// TLS trust for HTTPS devices: system roots, insecure, a custom CA file, or a SHA-256 pin.
// Pinning: fetch the server's leaf certificate once over a NIOSSL connection whose custom
// verification callback records it, compare its fingerprint, then trust exactly that
// certificate (as the only root, without host name check) for HTTP and WebSocket alike.

import COpenSSL
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

enum TLSSetup {
    /// The TLS configuration for `address` under `trust`; nil for plain HTTP.
    static func configuration(for trust: TLSTrust, address: DeviceAddress, timeout: Duration) async throws(NanoKVMError) -> TLSConfiguration? {
        guard address.scheme == .https else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch trust {
        case .system:
            break
        case .insecure:
            configuration.certificateVerification = .none
        case .certificateAuthority(let file):
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(file)
            } catch {
                throw NanoKVMError(.usage, "cannot read CA certificates from '\(file)': \(error)", device: address.baseURL)
            }
            guard !certificates.isEmpty else {
                throw NanoKVMError(.usage, "no PEM certificate in '\(file)'", device: address.baseURL)
            }
            configuration.trustRoots = .certificates(certificates)
        case .pinnedSHA256(let text):
            let pin = try normalisedFingerprint(text)
            let leaf = try await fetchLeafCertificate(address: address, timeout: timeout)
            let actual = try fingerprint(of: leaf)
            guard actual == pin else {
                throw NanoKVMError(
                    .transport,
                    "certificate fingerprint mismatch: the device presents \(formatFingerprint(actual)), expected \(formatFingerprint(pin))",
                    device: address.baseURL)
            }
            configuration.trustRoots = .certificates([leaf])
            configuration.certificateVerification = .noHostnameVerification
        }
        return configuration
    }

    /// Lower-case hex without separators; `usage` unless it is 32 bytes of hex.
    static func normalisedFingerprint(_ text: String) throws(NanoKVMError) -> String {
        var hex = ""
        var body = Substring(text.lowercased())
        if body.hasPrefix("sha256:") || body.hasPrefix("sha256=") { body = body.dropFirst(7) }
        for c in body {
            if c == ":" || c == " " || c == "-" { continue }
            guard c.isHexDigit else { throw NanoKVMError(.usage, "certificate fingerprint '\(text)' is not hex") }
            hex.append(c)
        }
        guard hex.count == 64 else {
            throw NanoKVMError(.usage, "certificate fingerprint must be 32 bytes of SHA-256 in hex (colons allowed), got \(hex.count / 2) bytes")
        }
        return hex
    }

    static func formatFingerprint(_ hex: String) -> String {
        var out = ""
        for (index, c) in hex.uppercased().enumerated() {
            if index > 0 && index % 2 == 0 { out.append(":") }
            out.append(c)
        }
        return out
    }

    /// SHA-256 of the certificate's DER encoding, lower-case hex.
    static func fingerprint(of certificate: NIOSSLCertificate) throws(NanoKVMError) -> String {
        let der: [UInt8]
        do {
            der = try certificate.toDERBytes()
        } catch {
            throw NanoKVMError(.transport, "cannot encode the device certificate: \(error)")
        }
        return sha256Hex(der)
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        _ = bytes.withUnsafeBufferPointer { input in
            digest.withUnsafeMutableBufferPointer { output in
                SHA256(input.baseAddress, input.count, output.baseAddress)
            }
        }
        let hex = Array("0123456789abcdef")
        var out = ""
        for byte in digest {
            out.append(hex[Int(byte >> 4)]); out.append(hex[Int(byte & 15)])
        }
        return out
    }

    /// Connects once and returns the leaf certificate the server presents (not verified here).
    static func fetchLeafCertificate(address: DeviceAddress, timeout: Duration) async throws(NanoKVMError) -> NIOSSLCertificate {
        var configuration = TLSConfiguration.makeClientConfiguration()
        // The custom callback below replaces verification; it only records the chain.
        configuration.certificateVerification = .noHostnameVerification
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw NanoKVMError(.transport, "cannot set up TLS: \(error)", device: address.baseURL)
        }
        let recorder = LeafRecorder()
        let serverName = address.host.isIPAddress ? nil : address.host
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(timeout.timeAmount)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = try NIOSSLClientHandler(
                            context: context, serverHostname: serverName,
                            customVerificationCallback: { certificates, promise in
                                // Recording the chain is all we came for; the channel closes next.
                                recorder.record(certificates.first)
                                promise.succeed(.certificateVerified)
                                recorder.completeHandshake()
                            })
                        try channel.pipeline.syncOperations.addHandler(handler)
                        try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(promise: recorder.handshake(on: channel.eventLoop)))
                    }
                }
                .connect(host: address.host, port: address.port).get()
            defer { channel.close(promise: nil) }
            try await recorder.waitForHandshake(timeout: timeout)
        } catch {
            throw TransportErrors.map(error, method: nil, path: nil, device: address.baseURL, timeout: timeout)
        }
        guard let leaf = recorder.leaf else {
            throw NanoKVMError(.transport, "the device presented no certificate", device: address.baseURL)
        }
        return leaf
    }
}

/// Thread-safe holder for what the TLS callbacks see.
private final class LeafRecorder: Sendable {
    private struct State {
        var recorded: NIOSSLCertificate?
        var handshakePromise: EventLoopPromise<Void>?
    }
    private let state = Mutex(State())

    func record(_ certificate: NIOSSLCertificate?) { state.withLock { $0.recorded = certificate } }
    var leaf: NIOSSLCertificate? { state.withLock { $0.recorded } }

    func completeHandshake() { state.withLock { $0.handshakePromise }?.succeed(()) }

    func handshake(on loop: any EventLoop) -> EventLoopPromise<Void> {
        let promise = loop.makePromise(of: Void.self)
        state.withLock { $0.handshakePromise = promise }
        return promise
    }

    func waitForHandshake(timeout: Duration) async throws {
        guard let promise = state.withLock({ $0.handshakePromise }) else { return }
        let loop = promise.futureResult.eventLoop
        let scheduled = loop.scheduleTask(in: timeout.timeAmount) {
            promise.fail(NanoKVMError(.timeout, "TLS handshake timed out"))
        }
        defer { scheduled.cancel() }
        try await promise.futureResult.get()
    }
}

/// Fails the promise when the connection fails before the certificate was seen.
private final class HandshakeWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let promise: EventLoopPromise<Void>
    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(NanoKVMError(.transport, "the device closed the connection during the TLS handshake"))
        context.fireChannelInactive()
    }
}

extension String {
    /// A literal IPv4 or IPv6 address (SNI must not carry one).
    var isIPAddress: Bool {
        if contains(":") { return true }
        let parts = split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isNumber) }
    }
}
