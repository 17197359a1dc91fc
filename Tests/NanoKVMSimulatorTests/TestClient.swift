// A small raw HTTP/1.1 + WebSocket client over SwiftNIO for the simulator tests: it sends the
// exact bytes a test wants and hands back the exact bytes the simulator answered, so status
// lines, header fields, chunking and frame layout can be asserted. Independent of the
// client library.

import Foundation
import NIOCore
import NIOPosix
import NanoKVM
@testable import NanoKVMSimulator

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct RawResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func headers(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue? { try? JSONValue.parse(bytes: body) }
}

/// One TCP connection to the simulator.
final class TestConnection {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let channel: any Channel
    private var buffer: [UInt8] = []
    private var ended = false

    init(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, _ channel: any Channel) {
        self.iterator = inbound.makeAsyncIterator()
        self.outbound = outbound
        self.channel = channel
    }

    func send(_ bytes: [UInt8]) async throws { try await outbound.write(ByteBuffer(bytes: bytes)) }
    func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    /// Reads more bytes; false at end of stream.
    @discardableResult
    func fill() async throws -> Bool {
        if ended { return false }
        guard var more = try await iterator.next() else {
            ended = true
            return false
        }
        buffer += more.readBytes(length: more.readableBytes) ?? []
        return true
    }

    var isAtEnd: Bool { ended && buffer.isEmpty }

    func readLine() async throws -> String {
        while true {
            if let index = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[0..<index])
                buffer.removeFirst(index + 1)
                if line.last == 0x0D { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard try await fill() else { throw TestFailure("connection ended while reading a line") }
        }
    }

    func readBytes(_ count: Int) async throws -> [UInt8] {
        while buffer.count < count {
            guard try await fill() else { throw TestFailure("connection ended after \(buffer.count) of \(count) bytes") }
        }
        let bytes = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return bytes
    }

    /// Everything until the peer closes.
    func readToEnd() async throws -> [UInt8] {
        while try await fill() {}
        defer { buffer = [] }
        return buffer
    }

    func readHead() async throws -> (status: Int, headers: [(String, String)]) {
        let statusLine = try await readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw TestFailure("bad status line \(statusLine)") }
        var headers: [(String, String)] = []
        while true {
            let line = try await readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw TestFailure("bad header \(line)") }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return (status, headers)
    }

    /// One chunk of a chunked body; nil for the terminating chunk.
    func readChunk() async throws -> [UInt8]? {
        let sizeLine = try await readLine()
        guard let size = Int(sizeLine, radix: 16) else { throw TestFailure("bad chunk size \(sizeLine)") }
        if size == 0 {
            _ = try await readLine()
            return nil
        }
        let data = try await readBytes(size)
        guard try await readLine().isEmpty else { throw TestFailure("chunk not followed by CRLF") }
        return data
    }

    func readResponse(head: Bool = false) async throws -> RawResponse {
        let (status, headers) = try await readHead()
        let response = RawResponse(status: status, headers: headers, body: [])
        if head || status == 101 || status == 204 || status == 304 { return response }
        if let length = response.header("Content-Length").flatMap(Int.init) {
            return RawResponse(status: status, headers: headers, body: try await readBytes(length))
        }
        if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            var body: [UInt8] = []
            while let chunk = try await readChunk() { body += chunk }
            return RawResponse(status: status, headers: headers, body: body)
        }
        return RawResponse(status: status, headers: headers, body: try await readToEnd())
    }

    func request(
        _ method: String, _ path: String, body: String? = nil, contentType: String? = "application/json",
        cookie: String? = nil, headers extra: [(String, String)] = []
    ) async throws -> RawResponse {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let cookie { text += "Cookie: nano-kvm-token=\(cookie)\r\n" }
        for (name, value) in extra { text += "\(name): \(value)\r\n" }
        if let body {
            if let contentType { text += "Content-Type: \(contentType)\r\n" }
            text += "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        } else {
            text += "\r\n"
        }
        try await send(text)
        return try await readResponse()
    }

    // MARK: WebSocket

    func upgrade(_ path: String = "/api/ws", cookie: String?, origin: String? = nil) async throws -> RawResponse {
        var text = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        if let cookie { text += "Cookie: nano-kvm-token=\(cookie)\r\n" }
        if let origin { text += "Origin: \(origin)\r\n" }
        try await send(text + "\r\n")
        return try await readResponse()
    }

    /// Sends one masked frame.
    func sendFrame(opcode: UInt8, _ payload: [UInt8], fin: Bool = true) async throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame.append(0x80 | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        try await send(frame)
    }

    func sendBinary(_ payload: [UInt8]) async throws { try await sendFrame(opcode: 2, payload) }
    func sendText(_ text: String) async throws { try await sendFrame(opcode: 1, Array(text.utf8)) }

    /// The next server frame (opcode, payload); nil when the connection ended.
    func readFrame() async throws -> (opcode: UInt8, payload: [UInt8])? {
        guard let head = try? await readBytes(2) else { return nil }
        var length = Int(head[1] & 0x7F)
        if length == 126 {
            let ext = try await readBytes(2)
            length = Int(ext[0]) << 8 | Int(ext[1])
        } else if length == 127 {
            let ext = try await readBytes(8)
            length = ext.reduce(0) { $0 << 8 | Int($1) }
        }
        return (head[0] & 0x0F, try await readBytes(length))
    }
}

/// Runs `body` with a connection to `port`; the connection is closed after `timeout` seconds
/// at the latest so a hung read fails the test instead of hanging it.
func withConnection<T>(
    _ port: Int, timeout: Double = 15, _ body: (TestConnection) async throws -> T
) async throws -> T {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    let underlying = channel.channel
    let watchdog = Task {
        try await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
        try await underlying.close()
    }
    defer { watchdog.cancel() }
    return try await channel.executeThenClose { inbound, outbound in
        try await body(TestConnection(inbound, outbound, underlying))
    }
}

/// A started simulator, stopped when the test ends.
func withSimulator<T>(
    _ configuration: SimulatorConfiguration = .fast(), _ body: (NanoKVMSimulator) async throws -> T
) async throws -> T {
    let simulator = NanoKVMSimulator(configuration: configuration)
    try await simulator.start()
    do {
        let result = try await body(simulator)
        await simulator.stop()
        return result
    } catch {
        await simulator.stop()
        throw error
    }
}

extension NanoKVMSimulator {
    /// Logs in over HTTP with the device's obfuscation; returns the token (body or cookie).
    func login(username: String? = nil, password: String? = nil) async throws -> String {
        let field = NanoKVMSimulator.obfuscate(password ?? configuration.password)
        let body = #"{"username":"\#(username ?? configuration.username)","password":"\#(field)"}"#
        let response = try await withConnection(port) { try await $0.request("POST", "/api/auth/login", body: body) }
        if let token = response.json?["data"]?["token"]?.stringValue { return token }
        guard let cookie = response.header("Set-Cookie"),
            let value = cookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last
        else { throw TestFailure("login failed: \(response.text)") }
        return String(value)
    }

    func get(_ path: String, token: String?) async throws -> RawResponse {
        try await withConnection(port) { try await $0.request("GET", path, cookie: token) }
    }

    func post(_ path: String, _ body: String? = nil, token: String?, contentType: String? = "application/json") async throws -> RawResponse {
        try await withConnection(port) { try await $0.request("POST", path, body: body, contentType: contentType, cookie: token) }
    }
}

/// Waits until `condition` holds (polling), or fails after `timeout` seconds.
func eventually(_ what: String, timeout: Double = 3, _ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("timed out waiting for \(what)")
}
