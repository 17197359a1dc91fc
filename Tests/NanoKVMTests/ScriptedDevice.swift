import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NanoKVM
import Synchronization

/// A tiny loopback HTTP(S) server whose answers the test scripts byte for byte: crafted
/// MJPEG streams, answers the simulator cannot produce, and TLS with a certificate made by
/// the `openssl` command line. Each connection serves one request and is closed.
final class ScriptedDevice: Sendable {
    struct Request: Sendable {
        var method: String
        var path: String
        /// Lower-cased header names.
        var headers: [String: String]
    }

    /// Returns the complete raw HTTP answer for a request.
    typealias Responder = @Sendable (Request) -> [UInt8]

    let channel: any Channel
    let log = Mutex<[Request]>([])
    var port: Int { channel.localAddress?.port ?? 0 }
    var requests: [Request] { log.withLock { $0 } }

    private init(channel: any Channel) { self.channel = channel }

    static func start(tls: TLSConfiguration? = nil, port: Int = 0, responder: @escaping Responder) async throws -> ScriptedDevice {
        let context = try tls.map { try NIOSSLContext(configuration: $0) }
        let box = Mutex<ScriptedDevice?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        OneShotHTTPHandler(responder: responder, record: { request in box.withLock { $0 }?.log.withLock { $0.append(request) } }))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        let device = ScriptedDevice(channel: channel)
        box.withLock { $0 = device }
        return device
    }

    func stop() async { try? await channel.close() }

    // MARK: Answers

    static func answer(status: String = "200 OK", contentType: String = "application/json; charset=utf-8", body: [UInt8], extraHeaders: String = "") -> [UInt8] {
        Array("HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\(extraHeaders)\r\n".utf8) + body
    }

    static func envelope(_ data: String) -> [UInt8] {
        answer(body: Array(#"{"code":0,"msg":"success","data":\#(data)}"#.utf8))
    }

    /// `/api/vm/info` of an authentication-disabled 2.4.3 device (no multi-user probes follow).
    static let info = envelope(#"{"ips":[{"name":"eth0","addr":"10.0.0.7","version":"IPv4","type":"Wired"}],"mdns":"","image":"v1.4.1","application":"2.4.3","deviceKey":""}"#)

    /// A multipart answer without length, ended by closing the connection.
    static func stream(_ parts: [UInt8]) -> [UInt8] {
        Array("HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nConnection: close\r\n\r\n".utf8) + parts
    }
}

/// Reads one request head, answers it and closes.
private final class OneShotHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let responder: ScriptedDevice.Responder
    let record: @Sendable (ScriptedDevice.Request) -> Void
    var buffer: [UInt8] = []
    var answered = false

    init(responder: @escaping ScriptedDevice.Responder, record: @escaping @Sendable (ScriptedDevice.Request) -> Void) {
        self.responder = responder
        self.record = record
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        let chunk = unwrapInboundIn(data)
        buffer.append(contentsOf: chunk.readableBytesView)
        guard let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
        answered = true
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let parts = (lines.first ?? "").split(separator: " ")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let request = ScriptedDevice.Request(
            method: parts.count > 0 ? String(parts[0]) : "", path: parts.count > 1 ? String(parts[1]) : "", headers: headers)
        record(request)
        let answer = responder(request)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: answer))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A self-signed certificate shaped like the one the device generates (CA:FALSE, server
/// auth, the address in subjectAltName), made with the openssl command line.
struct TestCertificate {
    let directory: URL
    var certificatePath: String { directory.appendingPathComponent("cert.pem").path }
    var keyPath: String { directory.appendingPathComponent("key.pem").path }
    /// `openssl x509 -fingerprint -sha256` output: colon-separated upper-case hex.
    let fingerprint: String

    static func make() throws -> TestCertificate {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvmlua-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cert = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        _ = try runOpenSSL(
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                "-days", "2", "-subj", "/O=NanoKVM/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "keyUsage=digitalSignature,keyEncipherment",
                "-addext", "extendedKeyUsage=serverAuth",
            ], input: [])
        let output = String(decoding: try runOpenSSL(["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"], input: []), as: UTF8.self)
        // "sha256 Fingerprint=AB:CD:…"
        let fingerprint = output.split(separator: "=", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        return TestCertificate(directory: directory, fingerprint: fingerprint)
    }

    /// A CA and a leaf for 127.0.0.1 signed by it (the leaf replaces cert.pem/key.pem);
    /// returns the CA certificate's path.
    func makeCASignedLeaf() throws -> String {
        let ca = directory.appendingPathComponent("ca.pem").path
        let caKey = directory.appendingPathComponent("ca-key.pem").path
        let csr = directory.appendingPathComponent("leaf.csr").path
        let extensions = directory.appendingPathComponent("leaf.ext")
        try "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n".write(to: extensions, atomically: true, encoding: .utf8)
        _ = try runOpenSSL(
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", caKey, "-out", ca,
                "-days", "2", "-subj", "/CN=kvmlua test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ], input: [])
        _ = try runOpenSSL(
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyPath, "-out", csr, "-subj", "/CN=127.0.0.1"],
            input: [])
        _ = try runOpenSSL(
            ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", certificatePath, "-days", "2", "-extfile", extensions.path],
            input: [])
        return ca
    }

    func serverConfiguration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
