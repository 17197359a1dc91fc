// TLS trust for HTTPS devices: system roots, insecure, a custom CA file, or a SHA-256 pin of
// the device's certificate, checked on every connection (HTTP and WebSocket).

import AsyncHTTPClient
import COpenSSL
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// What a device's TLS trust comes down to.
struct TLSSettings: Sendable {
    /// The configuration for every TLS connection (nil: plain HTTP).
    var configuration: TLSConfiguration?
    /// With a pin, verification is replaced by comparing the leaf's SHA-256 on every
    /// connection (lower-case hex).
    var pinnedSHA256: String?

    static let plain = TLSSettings(configuration: nil, pinnedSHA256: nil)
}

enum TLSSetup {
    /// The TLS settings for `address` under `trust`.
    static func settings(for trust: TLSTrust, address: DeviceAddress) throws(NanoKVMError) -> TLSSettings {
        guard address.scheme == .https else { return .plain }
        var configuration = TLSConfiguration.makeClientConfiguration()
        var pin: String?
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
            // The device's certificate is self-signed with CA:FALSE and no keyCertSign, which
            // BoringSSL will not take as a trust root. So chain verification is off and every
            // connection is checked against the pin instead (PinnedHTTPClients for HTTP, the
            // verification callback for the WebSocket). Its names are not checked: the device
            // issues it for whatever address it had when it was made.
            pin = try normalisedFingerprint(text)
            configuration.certificateVerification = .none
        }
        return TLSSettings(configuration: configuration, pinnedSHA256: pin)
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
                kvm_SHA256(input.baseAddress, input.count, output.baseAddress)
            }
        }
        let hex = Array("0123456789abcdef")
        var out = ""
        for byte in digest {
            out.append(hex[Int(byte >> 4)]); out.append(hex[Int(byte & 15)])
        }
        return out
    }

}

extension TLSSetup {
    /// Throws `transport` unless `certificate` has the pinned SHA-256.
    static func checkPin(_ certificate: NIOSSLCertificate?, _ pin: String) throws(NanoKVMError) {
        guard let certificate else { throw NanoKVMError(.transport, "the device presented no certificate") }
        let actual = try fingerprint(of: certificate)
        guard actual == pin else {
            throw NanoKVMError(
                .transport,
                "certificate fingerprint mismatch: the device presents \(formatFingerprint(actual)), expected \(formatFingerprint(pin))")
        }
    }
}

/// One AsyncHTTPClient per pinned fingerprint, each checking its pin on every new connection
/// (after the handshake, before any request goes out). Like the shared client they live for
/// the whole process; there is one per distinct pin in use.
enum PinnedHTTPClients {
    private static let clients = Mutex<[String: HTTPClient]>([:])

    static func client(for pin: String) -> HTTPClient {
        clients.withLock { cache in
            if let existing = cache[pin] { return existing }
            var configuration = SharedHTTPClient.configuration()
            // AsyncHTTPClient's only per-connection hook; it runs after the TLS handshake and
            // a failure refuses the connection, so no request is ever sent to a wrong peer.
            configuration.http1_1ConnectionDebugInitializer = { channel in
                channel.nioSSL_peerCertificate().flatMapThrowing { certificate in
                    try TLSSetup.checkPin(certificate, pin)
                }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
            }
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            cache[pin] = client
            return client
        }
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
