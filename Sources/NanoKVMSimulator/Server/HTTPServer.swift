// The simulator's HTTP/1.1 + WebSocket listener: SwiftNIO for the sockets, and HTTP/1.1 and
// RFC 6455 framing written here on raw bytes. The device's observable details decide this:
// Go's server upgrades a WebSocket on any request of a keep-alive connection (clients with
// connection pools rely on it), an upgrade refused by authentication is an ordinary 401,
// MJPEG headers may only leave with the first frame, a heartbeat timeout drops the TCP
// connection without a close frame, and faults must be able to cut a response short.

internal import COpenSSL
import Foundation
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
import Synchronization

/// One HTTP request as the handlers see it.
struct SimRequest: Sendable {
    var method: String
    /// Path without the query string, percent-decoded like Go's `URL.Path`.
    var path: String
    var rawQuery: String
    var headers: HTTPHeaders
    var body: [UInt8]
    var remoteIP: String
    var version: HTTPVersion

    func header(_ name: String) -> String? { headers.first(name: name) }

    /// The first cookie called `name` (Go's `Request.Cookie`).
    func cookie(_ name: String) -> String? {
        for line in headers["cookie"] {
            for part in line.split(separator: ";") {
                let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard pair.count == 2 else { continue }
                if pair[0].trimmingCharacters(in: .whitespaces) == name {
                    var value = pair[1].trimmingCharacters(in: .whitespaces)
                    if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                        value = String(value.dropFirst().dropLast())
                    }
                    return value
                }
            }
        }
        return nil
    }

    var queryItems: [(String, String)] { GoURL.parseQuery(rawQuery) }

    /// Whether the request carries the tokens gorilla/websocket requires for an upgrade.
    var isWebSocketHandshake: Bool {
        func hasToken(_ name: String, _ token: String) -> Bool {
            headers[name].contains { line in
                line.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == token }
            }
        }
        return method == "GET" && hasToken("Connection", "upgrade") && hasToken("Upgrade", "websocket")
            && header("Sec-WebSocket-Version") == "13" && !(header("Sec-WebSocket-Key") ?? "").isEmpty
    }
}

/// A complete response, or a streamed one whose head leaves with its first body bytes.
struct SimResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: [(String, String)]
    var body: [UInt8]
    /// Streamed body (chunked): called with a writer; the head is written with the first chunk.
    var stream: (@Sendable (StreamWriter) async throws -> Void)?
    /// Close the connection after this response.
    var closeAfter = false
    /// Fault injection: close the connection instead of answering.
    var dropConnection = false
    /// Switch the connection to WebSocket (101) and hand it to the handler.
    var upgradeToWebSocket = false

    init(status: HTTPResponseStatus, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func drop() -> SimResponse {
        var response = SimResponse(status: .internalServerError)
        response.dropConnection = true
        return response
    }
}

/// Buffered reads over a connection's inbound bytes.
final class ByteReader {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private var buffer = ByteBuffer()

    init(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) {
        iterator = inbound.makeAsyncIterator()
    }

    /// Reads more bytes; false at end of stream.
    private func fill() async throws -> Bool {
        guard var more = try await iterator.next() else { return false }
        buffer.writeBuffer(&more)
        return true
    }

    /// A CRLF- (or LF-) terminated line without its terminator; nil at a clean end of stream.
    func readLine(limit: Int) async throws -> String? {
        while true {
            if let index = buffer.readableBytesView.firstIndex(of: 0x0A) {
                let length = index - buffer.readerIndex
                guard var line = buffer.readBytes(length: length + 1) else { return nil }
                line.removeLast()
                if line.last == 0x0D { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            if buffer.readableBytes > limit { throw HTTPParseError.tooLarge }
            if try await !fill() {
                if buffer.readableBytes == 0 { return nil }
                throw HTTPParseError.truncated
            }
        }
    }

    func readBytes(_ count: Int) async throws -> [UInt8] {
        while buffer.readableBytes < count {
            if try await !fill() { throw HTTPParseError.truncated }
        }
        return buffer.readBytes(length: count) ?? []
    }
}

enum HTTPParseError: Error {
    case truncated
    case tooLarge
    case malformed
}

/// Writes a streamed (chunked) body. The response head is sent with the first chunk.
final class StreamWriter: Sendable {
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let head: [UInt8]
    private let headWritten = Mutex(false)
    /// HTTP/1.1 bodies are chunked; HTTP/1.0 bodies are raw and end with the connection.
    private let chunked: Bool
    let channel: any Channel

    init(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, head: [UInt8], channel: any Channel, chunked: Bool = true) {
        self.outbound = outbound
        self.head = head
        self.channel = channel
        self.chunked = chunked
    }

    var hasWrittenHead: Bool { headWritten.withLock { $0 } }

    /// Writes `bytes` as one chunk.
    func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        let first = headWritten.withLock { written -> Bool in
            defer { written = true }
            return !written
        }
        var buffer = ByteBuffer()
        if first { buffer.writeBytes(head) }
        if chunked { buffer.writeString(String(bytes.count, radix: 16) + "\r\n") }
        buffer.writeBytes(bytes)
        if chunked { buffer.writeString("\r\n") }
        try await outbound.write(buffer)
    }

    /// Writes raw bytes inside an open chunk's framing (fault injection: a cut-off part).
    func writeTruncated(_ bytes: [UInt8], declaredLength: Int) async throws {
        let first = headWritten.withLock { written -> Bool in
            defer { written = true }
            return !written
        }
        var buffer = ByteBuffer()
        if first { buffer.writeBytes(head) }
        if chunked { buffer.writeString(String(declaredLength, radix: 16) + "\r\n") }
        buffer.writeBytes(bytes)
        try await outbound.write(buffer)
    }
}

/// A WebSocket frame (RFC 6455), unmasked.
struct WSFrame: Sendable {
    enum Opcode: UInt8, Sendable {
        case continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10
    }

    var fin: Bool
    var opcode: Opcode
    var payload: [UInt8]
}

/// An upgraded connection: frames in, frames out.
final class WebSocketConnection: Sendable {
    let request: SimRequest
    let channel: any Channel
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let reader: UncheckedReader
    static let maxFrame = 1 << 20

    /// The reader is used by one task at a time (the connection's read loop).
    final class UncheckedReader: @unchecked Sendable {
        let reader: ByteReader
        init(_ reader: ByteReader) { self.reader = reader }
    }

    init(request: SimRequest, channel: any Channel, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, reader: ByteReader) {
        self.request = request
        self.channel = channel
        self.outbound = outbound
        self.reader = UncheckedReader(reader)
    }

    /// Completes the upgrade: writes the `101 Switching Protocols` response.
    func accept() async throws {
        let accept = SimHTTPServer.webSocketAccept(request.header("Sec-WebSocket-Key") ?? "")
        try await outbound.write(ByteBuffer(string:
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n"))
    }

    /// The next frame from the client; nil when the connection ended.
    func readFrame() async throws -> WSFrame? {
        let reader = self.reader.reader
        let head: [UInt8]
        do { head = try await reader.readBytes(2) } catch { return nil }
        let fin = head[0] & 0x80 != 0
        guard let opcode = WSFrame.Opcode(rawValue: head[0] & 0x0F) else { throw HTTPParseError.malformed }
        let masked = head[1] & 0x80 != 0
        var length = Int(head[1] & 0x7F)
        if length == 126 {
            let ext = try await reader.readBytes(2)
            length = Int(ext[0]) << 8 | Int(ext[1])
        } else if length == 127 {
            let ext = try await reader.readBytes(8)
            var value: UInt64 = 0
            for byte in ext { value = value << 8 | UInt64(byte) }
            guard value <= UInt64(Self.maxFrame) else { throw HTTPParseError.tooLarge }
            length = Int(value)
        }
        guard length <= Self.maxFrame else { throw HTTPParseError.tooLarge }
        // Clients must mask (gorilla closes the connection otherwise).
        guard masked else { throw HTTPParseError.malformed }
        let mask = try await reader.readBytes(4)
        var payload = try await reader.readBytes(length)
        for i in payload.indices { payload[i] ^= mask[i & 3] }
        return WSFrame(fin: fin, opcode: opcode, payload: payload)
    }

    func send(_ opcode: WSFrame.Opcode, _ payload: [UInt8]) async throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(0x80 | opcode.rawValue)
        if payload.count < 126 {
            buffer.writeInteger(UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(payload.count))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(payload.count))
        }
        buffer.writeBytes(payload)
        try await outbound.write(buffer)
    }

    func sendText(_ text: String) async throws { try await send(.text, Array(text.utf8)) }

    func sendClose(code: UInt16, reason: String) async {
        var payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
        payload += Array(reason.utf8)
        try? await send(.close, payload)
    }

    /// Drops the TCP connection (no close frame).
    func drop() async { try? await channel.close() }
}

/// How the listener hands requests to the simulator.
protocol SimRequestHandler: Sendable {
    func handle(_ request: SimRequest) async -> SimResponse
    func runWebSocket(_ connection: WebSocketConnection) async
}

final class SimHTTPServer: Sendable {
    private struct State {
        var serverChannel: (any Channel)?
        var children: [ObjectIdentifier: any Channel] = [:]
        var acceptTask: Task<Void, Never>?
        var stopped = false
    }

    private let handler: any SimRequestHandler
    private let state = Mutex(State())
    let maxBodySize = 64 << 20
    let maxHeaderSize = 1 << 20

    init(handler: any SimRequestHandler) {
        self.handler = handler
    }

    /// Binds and starts accepting; returns the bound port.
    func start(host: String, port: Int) async throws -> Int {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        let serverChannel = try await bootstrap.bind(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            }
        }
        let boundPort = serverChannel.channel.localAddress?.port ?? port
        let task = Task(executorPreference: SimulatorExecutor.shared) { [weak self] in
            do {
                try await serverChannel.executeThenClose { inbound in
                    await withDiscardingTaskGroup { group in
                        do {
                            for try await connection in inbound {
                                group.addTask { await self?.serve(connection) }
                            }
                        } catch {
                            // The listening socket closed (stop()).
                        }
                    }
                }
            } catch {
                // Closing the server channel ends the loop.
            }
        }
        state.withLock {
            $0.serverChannel = serverChannel.channel
            $0.acceptTask = task
        }
        return boundPort
    }

    func stop() async {
        let (server, children, task) = state.withLock { s -> ((any Channel)?, [any Channel], Task<Void, Never>?) in
            s.stopped = true
            let result = (s.serverChannel, Array(s.children.values), s.acceptTask)
            s.serverChannel = nil
            s.children = [:]
            return result
        }
        try? await server?.close()
        for child in children { try? await child.close() }
        task?.cancel()
        await task?.value
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let channel = connection.channel
        let registered = state.withLock { s -> Bool in
            if s.stopped { return false }
            s.children[ObjectIdentifier(channel)] = channel
            return true
        }
        guard registered else {
            try? await channel.close()
            return
        }
        defer { _ = state.withLock { $0.children.removeValue(forKey: ObjectIdentifier(channel)) } }
        let remoteIP = channel.remoteAddress?.ipAddress ?? ""
        do {
            try await connection.executeThenClose { inbound, outbound in
                let reader = ByteReader(inbound)
                while true {
                    let request: SimRequest
                    do {
                        guard let parsed = try await readRequest(reader, outbound: outbound, remoteIP: remoteIP) else { return }
                        request = parsed
                    } catch HTTPParseError.tooLarge {
                        try await outbound.write(ByteBuffer(string: "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large"))
                        return
                    } catch HTTPParseError.malformed {
                        try await outbound.write(ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"))
                        return
                    }
                    let response = await handler.handle(request)
                    if response.dropConnection { return }
                    if response.upgradeToWebSocket {
                        // The handler writes the 101 itself (`accept()`), once it has registered the
                        // connection: a client that has seen the 101 can rely on being reachable by
                        // server events and faults from then on.
                        let ws = WebSocketConnection(request: request, channel: channel, outbound: outbound, reader: reader)
                        await handler.runWebSocket(ws)
                        return
                    }
                    let keepAlive = try await write(response, request: request, to: outbound, channel: channel)
                    if !keepAlive { return }
                }
            }
        } catch {
            // Connection reset by the peer, or a streamed body ended by the client.
        }
        try? await channel.close()
    }

    static func webSocketAccept(_ key: String) -> String {
        let input = Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var size: UInt32 = 0
        _ = kvm_EVP_Digest(input, input.count, &digest, &size, kvm_EVP_sha1(), nil)
        return GoBase64.encode(Array(digest[0..<Int(size)]))
    }

    private func readRequest(
        _ reader: ByteReader, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, remoteIP: String
    ) async throws -> SimRequest? {
        var requestLine: String?
        // Go tolerates empty lines before a request line.
        while requestLine == nil || requestLine == "" {
            guard let line = try await reader.readLine(limit: maxHeaderSize) else { return nil }
            requestLine = line
        }
        let parts = (requestLine ?? "").split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, let version = Self.parseVersion(parts[2]) else { throw HTTPParseError.malformed }
        var headers = HTTPHeaders()
        var headerBytes = 0
        while true {
            guard let line = try await reader.readLine(limit: maxHeaderSize) else { throw HTTPParseError.truncated }
            if line.isEmpty { break }
            headerBytes += line.utf8.count
            if headerBytes > maxHeaderSize { throw HTTPParseError.tooLarge }
            guard let colon = line.firstIndex(of: ":") else { throw HTTPParseError.malformed }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw HTTPParseError.malformed }
            headers.add(name: name, value: value)
        }
        var body: [UInt8] = []
        let chunked = headers["Transfer-Encoding"].contains { $0.lowercased().contains("chunked") }
        let length = headers.first(name: "Content-Length").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let expectsContinue = headers.first(name: "Expect")?.lowercased() == "100-continue"
        if expectsContinue, chunked || (length ?? 0) > 0 {
            try await outbound.write(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n"))
        }
        if chunked {
            while true {
                guard let sizeLine = try await reader.readLine(limit: 4096) else { throw HTTPParseError.truncated }
                let sizeText = sizeLine.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                guard let size = Int(sizeText, radix: 16), size >= 0 else { throw HTTPParseError.malformed }
                if size == 0 {
                    while let trailer = try await reader.readLine(limit: maxHeaderSize), !trailer.isEmpty {}
                    break
                }
                guard body.count + size <= maxBodySize else { throw HTTPParseError.tooLarge }
                body += try await reader.readBytes(size)
                _ = try await reader.readLine(limit: 16)
            }
        } else if let length {
            guard length >= 0, length <= maxBodySize else { throw HTTPParseError.tooLarge }
            body = try await reader.readBytes(length)
        } else if headers.first(name: "Content-Length") != nil {
            throw HTTPParseError.malformed
        }
        return Self.makeRequest(
            method: String(parts[0]), uri: String(parts[1]), version: version, headers: headers, body: body, remoteIP: remoteIP)
    }

    private static func parseVersion(_ text: Substring) -> HTTPVersion? {
        switch text {
        case "HTTP/1.1": return .http1_1
        case "HTTP/1.0": return .http1_0
        default: return nil
        }
    }

    static func makeRequest(
        method: String, uri: String, version: HTTPVersion, headers: HTTPHeaders, body: [UInt8], remoteIP: String
    ) -> SimRequest {
        let pathPart: Substring
        let query: String
        if let mark = uri.firstIndex(of: "?") {
            pathPart = uri[..<mark]
            query = String(uri[uri.index(after: mark)...])
        } else {
            pathPart = uri[...]
            query = ""
        }
        // Go decodes %XX in the path (but not '+').
        var decoded = String(pathPart)
        if decoded.contains("%"), let bytes = Self.percentDecode(decoded) {
            decoded = String(decoding: bytes, as: UTF8.self)
        }
        return SimRequest(method: method, path: decoded, rawQuery: query, headers: headers, body: body, remoteIP: remoteIP, version: version)
    }

    private static func percentDecode(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = GoURL.hexValue(bytes[i + 1]), let lo = GoURL.hexValue(bytes[i + 2]) else {
                    return nil
                }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    static func keepAlive(_ request: SimRequest) -> Bool {
        let connection = request.headers["Connection"].joined(separator: ",").lowercased()
        if request.version == .http1_0 { return connection.contains("keep-alive") }
        return !connection.contains("close")
    }

    private func headText(_ response: SimResponse, extra: [(String, String)], version: HTTPVersion) -> [UInt8] {
        let reason = response.status.reasonPhrase
        var text = "HTTP/\(version.major).\(version.minor) \(response.status.code) \(reason)\r\n"
        // Go's net/http writes header fields sorted by name.
        let fields = (response.headers + extra).enumerated().sorted { a, b in
            let (x, y) = (a.element.0.lowercased(), b.element.0.lowercased())
            return x == y ? a.offset < b.offset : x < y
        }
        for (_, (name, value)) in fields { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// Writes `response`; returns whether the connection stays open for another request.
    private func write(
        _ response: SimResponse, request: SimRequest, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, channel: any Channel
    ) async throws -> Bool {
        var extra: [(String, String)] = []
        let hasDate = response.headers.contains { $0.0.lowercased() == "date" }
        if !hasDate { extra.append(("Date", GoTime.httpDate())) }
        var keepAlive = Self.keepAlive(request) && !response.closeAfter
        if let stream = response.stream {
            let chunked = request.version != .http1_0
            if chunked {
                extra.append(("Transfer-Encoding", "chunked"))
            } else {
                // No chunked encoding for HTTP/1.0: the body ends with the connection.
                keepAlive = false
            }
            let writer = StreamWriter(
                outbound: outbound, head: headText(response, extra: extra, version: request.version), channel: channel,
                chunked: chunked)
            // The stream runs until it ends or the client goes away: NIO closes the channel when
            // it reads the client's EOF (as Go's request context ends), which cancels the stream.
            // (Reading the input here instead would need cancelling a pending read.)
            let streamTask = Task(executorPreference: SimulatorExecutor.shared) { () -> Bool in
                do {
                    try await stream(writer)
                    return true
                } catch {
                    return false
                }
            }
            channel.closeFuture.whenComplete { _ in streamTask.cancel() }
            let completed = await withTaskCancellationHandler {
                await streamTask.value
            } onCancel: {
                streamTask.cancel()
            }
            guard completed else {
                // Ended abnormally (client gone, fault): close without the terminating chunk.
                return false
            }
            if !writer.hasWrittenHead {
                try await outbound.write(ByteBuffer(bytes: headText(response, extra: extra, version: request.version)))
            }
            if chunked { try await outbound.write(ByteBuffer(string: "0\r\n\r\n")) }
            _ = keepAlive
            return false
        }
        let noBody = response.status == .noContent || response.status == .notModified || (100..<200).contains(response.status.code)
        if !noBody, !response.headers.contains(where: { $0.0.lowercased() == "content-length" }) {
            extra.append(("Content-Length", String(response.body.count)))
        }
        if !keepAlive { extra.append(("Connection", "close")) }
        var buffer = ByteBuffer(bytes: headText(response, extra: extra, version: request.version))
        if request.method != "HEAD" { buffer.writeBytes(response.body) }
        try await outbound.write(buffer)
        return keepAlive
    }
}
