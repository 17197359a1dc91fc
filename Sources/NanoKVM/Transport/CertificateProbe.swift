// Reads a device's TLS certificate fingerprint without trusting it, for trust on first use
// (the Lua side records it in a known-hosts file, like ssh, and pins it from then on).

import NIOCore
import NIOPosix
import NIOSSL

public enum CertificateProbe {
    /// SHA-256 of the DER certificate the device at `address` presents, as upper-case hex
    /// pairs joined by colons. Nothing is sent after the TLS handshake.
    public static func fingerprint(of address: DeviceAddress, timeout: Duration = .seconds(10)) async throws(NanoKVMError) -> String {
        guard address.scheme == .https else {
            throw NanoKVMError(.usage, "\(address.baseURL) does not use TLS", device: address.baseURL)
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        do {
            let context = try NIOSSLContext(configuration: configuration)
            let serverName = address.host.isIPAddress ? nil : address.host
            let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
            let channel = try await bootstrap.connect(host: address.host, port: address.port).get()
            defer { channel.close(promise: nil) }
            // The handshake is done once the peer certificate can be read.
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let certificate = try await channel.nioSSL_peerCertificate().get() {
                    return TLSSetup.formatFingerprint(try TLSSetup.fingerprint(of: certificate))
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw NanoKVMError(.timeout, "no TLS handshake with \(address.baseURL)", device: address.baseURL)
        } catch let error as NanoKVMError {
            throw error
        } catch is CancellationError {
            throw NanoKVMError(.cancelled, "cancelled", device: address.baseURL)
        } catch {
            throw NanoKVMError(.transport, "cannot read the certificate of \(address.baseURL): \(error)", device: address.baseURL)
        }
    }

    /// Whether `error` says the certificate could not be verified (an untrusted, self-signed
    /// certificate is the normal case for a NanoKVM).
    public static func isCertificateVerificationFailure(_ error: NanoKVMError) -> Bool {
        guard error.kind == .transport else { return false }
        let text = error.message.lowercased()
        return text.contains("certificate") || text.contains("handshake") || text.contains("verify")
    }
}
