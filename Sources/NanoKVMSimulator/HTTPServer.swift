// The simulator's HTTP/1.1 + WebSocket listener on SwiftNIO. Written on NIO directly (rather
// than a framework router) because the device's observable details decide everything here:
// a refused WebSocket upgrade must fall through to the normal request path (401 before any
// upgrade), MJPEG headers may only leave with the first frame, a heartbeat timeout drops the
// TCP connection without a close frame, and faults must be able to cut a response short.

import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
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
        for line in headers[canonicalForm: "cookie"] {
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
}

/// A complete response, or a streamed one whose head leaves with its first body bytes.
struct SimResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: [(String, String)]
    var body: [UInt8]
    /// Streamed body: called with a writer after the handler returns; the head is written
    /// together with the first `write`.
    var stream: (@Sendable (StreamWriter) async throws -> Void)?
    /// Close the connection after this response.
    var closeAfter = false
    /// Fault injection: close the connection instead of answering.
    var dropConnection = false

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

/// Writes a streamed body. The response head is sent with the first chunk.
final class StreamWriter: Sendable {
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    private let head: HTTPResponseHead
    private let headWritten = Mutex(false)
    let channel: any Channel

    init(outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, head: HTTPResponseHead, channel: any Channel) {
        self.outbound = outbound
        self.head = head
        self.channel = channel
    }

    var hasWrittenHead: Bool { headWritten.withLock { $0 } }

    func write(_ bytes: [UInt8]) async throws {
        let buffer = ByteBuffer(bytes: bytes)
        let first = headWritten.withLock { written -> Bool in
            defer { written = true }
            return !written
        }
        if first {
            try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(buffer))])
        } else {
            try await outbound.write(.body(.byteBuffer(buffer)))
        }
    }
}

/// How the listener asks the simulator about requests and WebSocket upgrades.
protocol SimRequestHandler: Sendable {
    func handle(_ request: SimRequest) async -> SimResponse
    /// Whether `head` may be upgraded to a WebSocket (all checks the real server makes before
    /// gorilla's `Upgrade`); a refusal falls through to `handle`, which produces 401/403/400.
    func shouldUpgrade(_ head: HTTPRequestHead, remoteIP: String) -> Bool
    func runWebSocket(_ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, head: HTTPRequestHead, remoteIP: String) async
}

final class SimHTTPServer: Sendable {
    private enum ChildResult: Sendable {
        case http(NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>)
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, HTTPRequestHead)
    }

    private struct State {
        var serverChannel: (any Channel)?
        var children: [ObjectIdentifier: any Channel] = [:]
        var acceptTask: Task<Void, Never>?
        var stopped = false
    }

    private let handler: any SimRequestHandler
    private let state = Mutex(State())
    let maxBodySize = 64 << 20

    init(handler: any SimRequestHandler) {
        self.handler = handler
    }

    /// Binds and starts accepting; returns the bound port.
    func start(host: String, port: Int) async throws -> Int {
        let handler = self.handler
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        let serverChannel = try await bootstrap.bind(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                let remoteIP = channel.remoteAddress?.ipAddress ?? ""
                let upgrader = NIOTypedWebSocketServerUpgrader<ChildResult>(
                    maxFrameSize: 1 << 20,
                    shouldUpgrade: { channel, head in
                        channel.eventLoop.makeSucceededFuture(
                            handler.shouldUpgrade(head, remoteIP: remoteIP) ? HTTPHeaders() : nil)
                    },
                    upgradePipelineHandler: { channel, head in
                        channel.eventLoop.makeCompletedFuture {
                            let ws = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                                wrappingChannelSynchronously: channel,
                                configuration: .init(isOutboundHalfClosureEnabled: false))
                            return ChildResult.websocket(ws, head)
                        }
                    }
                )
                let upgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration<ChildResult>(
                    upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let http = try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                                wrappingChannelSynchronously: channel,
                                configuration: .init(isOutboundHalfClosureEnabled: true))
                            return ChildResult.http(http)
                        }
                    }
                )
                var configuration = NIOUpgradableHTTPServerPipelineConfiguration(upgradeConfiguration: upgradeConfiguration)
                configuration.enableResponseHeaderValidation = false
                return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            }
        }
        let boundPort = serverChannel.channel.localAddress?.port ?? port
        let task = Task { [weak self] in
            do {
                try await serverChannel.executeThenClose { inbound in
                    await withDiscardingTaskGroup { group in
                        do {
                            for try await negotiation in inbound {
                                group.addTask { await self?.serve(negotiation) }
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

    private func register(_ channel: any Channel) -> Bool {
        state.withLock { s in
            if s.stopped { return false }
            s.children[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    private func unregister(_ channel: any Channel) {
        _ = state.withLock { $0.children.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    private func serve(_ negotiation: EventLoopFuture<ChildResult>) async {
        do {
            switch try await negotiation.get() {
            case let .http(channel):
                guard register(channel.channel) else { try? await channel.channel.close(); return }
                defer { unregister(channel.channel) }
                await serveHTTP(channel)
            case let .websocket(channel, head):
                guard register(channel.channel) else { try? await channel.channel.close(); return }
                defer { unregister(channel.channel) }
                let remoteIP = channel.channel.remoteAddress?.ipAddress ?? ""
                await handler.runWebSocket(channel, head: head, remoteIP: remoteIP)
            }
        } catch {
            // The client went away during negotiation.
        }
    }

    private func serveHTTP(_ asyncChannel: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        let channel = asyncChannel.channel
        let remoteIP = channel.remoteAddress?.ipAddress ?? ""
        do {
            try await asyncChannel.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body: [UInt8] = []
                var tooLarge = false
                for try await part in inbound {
                    switch part {
                    case let .head(h):
                        head = h
                        body = []
                        tooLarge = false
                    case var .body(buffer):
                        if body.count + buffer.readableBytes > maxBodySize {
                            tooLarge = true
                        } else if let bytes = buffer.readBytes(length: buffer.readableBytes) {
                            body.append(contentsOf: bytes)
                        }
                    case .end:
                        guard let requestHead = head else { continue }
                        head = nil
                        if tooLarge {
                            try await writeSimple(outbound, status: .payloadTooLarge, keepAlive: false)
                            return
                        }
                        let request = Self.makeRequest(requestHead, body: body, remoteIP: remoteIP)
                        let response = await handler.handle(request)
                        if response.dropConnection { return }
                        let keepAlive = try await write(response, to: outbound, request: requestHead, channel: channel)
                        if !keepAlive { return }
                    }
                }
            }
        } catch {
            // Connection reset by the peer, or a streamed body ended by the client.
        }
    }

    static func makeRequest(_ head: HTTPRequestHead, body: [UInt8], remoteIP: String) -> SimRequest {
        let uri = head.uri
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
        if decoded.contains("%"), let bytes = Self.percentDecode(String(pathPart)) {
            decoded = String(decoding: bytes, as: UTF8.self)
        }
        return SimRequest(
            method: head.method.rawValue, path: decoded, rawQuery: query, headers: head.headers, body: body,
            remoteIP: remoteIP, version: head.version)
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

    private func writeSimple(
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, status: HTTPResponseStatus, keepAlive: Bool
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "0")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        try await outbound.write(contentsOf: [.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), .end(nil)])
    }

    /// Writes `response`; returns whether the connection stays open for another request.
    private func write(
        _ response: SimResponse, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        request: HTTPRequestHead, channel: any Channel
    ) async throws -> Bool {
        var headers = HTTPHeaders()
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        if headers.first(name: "Date") == nil { headers.add(name: "Date", value: GoTime.httpDate()) }
        let keepAlive = request.isKeepAlive && !response.closeAfter
        if let stream = response.stream {
            let head = HTTPResponseHead(version: request.version, status: response.status, headers: headers)
            let writer = StreamWriter(outbound: outbound, head: head, channel: channel)
            do {
                try await stream(writer)
            } catch {
                // The streamed body ended abnormally (client gone, fault): close without a clean end.
                return false
            }
            if !writer.hasWrittenHead { try await outbound.write(.head(head)) }
            try await outbound.write(.end(nil))
            return keepAlive
        }
        if headers.first(name: "Content-Length") == nil, response.status.mayHaveResponseBody {
            headers.add(name: "Content-Length", value: String(response.body.count))
        }
        if !keepAlive, request.version == .http1_1 { headers.replaceOrAdd(name: "Connection", value: "close") }
        var parts: [HTTPServerResponsePart] = [.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers))]
        if !response.body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: response.body)))) }
        parts.append(.end(nil))
        try await outbound.write(contentsOf: parts)
        return keepAlive
    }
}
