// The `/api/ws` session (protocol §8): sends raw HID reports in the generation's encoding,
// keeps the heartbeat, delivers server events, and reports the close code (4401 = the
// session was revoked, log in again).
//
// This is our own small client on NIOWebSocket rather than WSClient: WSClient always adds
// `Origin: ws://host` without the port, which the multi-user firmware's origin check turns
// into HTTP 403 on any non-default port. A native client must send no Origin at all (§8.1).

import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization

/// When a message left for the device.
public struct HIDSendReceipt: Sendable, Equatable {
    /// 1 for the first message of the session, in send order.
    public let sequence: UInt64
    /// `MonotonicClock.now()` on the event loop when the frame(s) were written to the socket.
    public let writtenAt: Double
}

/// Why the session ended.
public struct HIDSessionClose: Sendable, Equatable {
    /// The close code the device sent (nil when the connection dropped without one).
    public var code: Int?
    public var reason: String
    /// We closed it.
    public var closedByClient: Bool
    /// The failure that ended it, if any.
    public var error: NanoKVMError?

    /// 4401: the token expired or was revoked; log in again before reconnecting.
    public var reloginRequired: Bool { code == 4401 }
}

/// A message from the device (§8.5).
public enum HIDSessionEvent: Sendable, Equatable {
    /// `capture-status` (2.4.2+): `data` after the second parse.
    case captureStatus(JSONValue)
    /// `h264-mode-status` (2.5.0+).
    case h264ModeStatus(JSONValue)
    /// `hid-led-status` (2.5.0+).
    case keyboardLEDs(KeyboardLEDs)
    /// `{"type":"stream","state":n}` (2.0.x–2.1.0).
    case streamState(Int)
    /// Another typed message, its `data` parsed when it was JSON text.
    case message(type: String, data: JSONValue)
    /// Text that is not a typed message.
    case text(String)
    case binary([UInt8])
    /// The last event.
    case closed(HIDSessionClose)
}

public struct HIDSessionOptions: Sendable {
    /// Interval of the automatic heartbeat; nil uses the firmware's (15 s binary `00`, or 60 s
    /// text `[0]` on the legacy protocol). `.zero` switches it off.
    public var heartbeatInterval: Duration?
    /// Server events kept for a slow reader (older ones are dropped).
    public var bufferedEvents: Int

    public init(heartbeatInterval: Duration? = nil, bufferedEvents: Int = 256) {
        self.heartbeatInterval = heartbeatInterval
        self.bufferedEvents = max(1, bufferedEvents)
    }
}

public final class HIDSession: Sendable {
    /// The encoding in use.
    public let generation: FirmwareGeneration
    /// Server events, ending with `.closed`.
    public let events: AsyncStream<HIDSessionEvent>

    let channel: any Channel
    let connection: WebSocketConnectionState
    let device: String
    private let heartbeatTask: Mutex<Task<Void, Never>?> = Mutex(nil)
    private let sender: Mutex<SenderState>
    private let releaseOnClose: Bool

    struct SenderState {
        var sequence: UInt64 = 0
        var legacy: LegacyHIDEncoder
    }

    init(channel: any Channel, connection: WebSocketConnectionState, events: AsyncStream<HIDSessionEvent>, profile: FirmwareProfile, device: String) {
        self.channel = channel
        self.connection = connection
        self.events = events
        self.generation = profile.generation
        self.device = device
        self.sender = Mutex(SenderState(legacy: LegacyHIDEncoder(profile: profile)))
        self.releaseOnClose = !profile.serverReleasesInputOnDisconnect
    }

    /// How the session ended, once it did.
    public var closeInfo: HIDSessionClose? { connection.closeInfo }
    public var isOpen: Bool { connection.closeInfo == nil && channel.isActive }

    /// Sends one message in this session's encoding and returns once it is written to the
    /// socket. The device never acknowledges input; a later reconnect should resend from the
    /// first message whose receipt never came.
    @discardableResult
    public func send(_ message: HIDMessage) async throws(NanoKVMError) -> HIDSendReceipt {
        try await send(message, at: nil)
    }

    /// Sends `message` at `deadline` (`MonotonicClock` seconds): the write is scheduled on the
    /// connection's event loop, whose timer wakes up and writes in one step, and the call
    /// returns once it is written. A deadline in the past writes at once. Cancelling the task
    /// before the deadline cancels the write (raises `cancelled`, nothing is sent).
    @discardableResult
    public func send(_ message: HIDMessage, at deadline: Double?) async throws(NanoKVMError) -> HIDSendReceipt {
        let frames: [HIDWireFrame]
        switch generation {
        case .current:
            guard let bytes = HIDBinaryEncoding.encode(message) else {
                throw NanoKVMError(.usage, "legacy JSON messages cannot be sent on the binary protocol", path: "/api/ws", device: device)
            }
            frames = [.binary(bytes)]
        case .legacy:
            frames = []
        }
        return try await write(frames, legacyMessage: generation == .legacy ? message : nil, at: deadline)
    }

    /// Sends a frame verbatim (for experiments; no encoding, no checks).
    @discardableResult
    public func sendRaw(_ frame: HIDWireFrame) async throws(NanoKVMError) -> HIDSendReceipt {
        try await write([frame], legacyMessage: nil, at: nil)
    }

    private func write(_ frames: [HIDWireFrame], legacyMessage: HIDMessage?, at deadline: Double?) async throws(NanoKVMError) -> HIDSendReceipt {
        if let info = connection.closeInfo {
            throw info.error ?? NanoKVMError(
                .transport, "the WebSocket is closed" + (info.code.map { " (code \($0)\(info.reason.isEmpty ? "" : ": \(info.reason)"))" } ?? ""),
                path: "/api/ws", device: device)
        }
        let channel = self.channel
        // Sequence numbers and socket writes are taken in one critical section so concurrent
        // senders' frames reach the socket in sequence order.
        let (sequence, written, scheduled) = sender.withLock { state -> (UInt64, EventLoopFuture<Double>, Scheduled<Double>?) in
            state.sequence += 1
            var wire = frames
            if let legacyMessage {
                wire = state.legacy.encode(legacyMessage).map { .text($0.text) }
            }
            let frames = wire.map(Self.frame)
            // The time is taken on the event loop when the write completes, not when this
            // task resumes (which can be later on a busy machine).
            @Sendable func writeAll() -> EventLoopFuture<Double> {
                var last: EventLoopFuture<Void> = channel.eventLoop.makeSucceededVoidFuture()
                for frame in frames { last = channel.writeAndFlush(frame) }
                return last.map { MonotonicClock.now() }
            }
            let delay = deadline.map { $0 - MonotonicClock.now() } ?? 0
            if let deadline, delay > 0 {
                // The timer fires a little early and the event loop spins the rest: a timer
                // wake-up alone lands 0.1–0.3 ms late on a virtual machine (MacroBenchmark).
                let early = max(0, delay - Self.timerLead)
                let task = channel.eventLoop.flatScheduleTask(in: .nanoseconds(Int64(min(early, 86_400) * 1e9))) {
                    while MonotonicClock.now() < deadline {}
                    return writeAll()
                }
                return (state.sequence, task.futureResult, task)
            }
            return (state.sequence, writeAll(), nil)
        }
        let writtenAt: Double
        do {
            if let scheduled {
                writtenAt = try await withTaskCancellationHandler {
                    try await written.get()
                } onCancel: {
                    scheduled.cancel()
                }
            } else {
                writtenAt = try await written.get()
            }
        } catch {
            if let loopError = error as? EventLoopError, case .cancelled = loopError {
                throw NanoKVMError(.cancelled, "cancelled", path: "/api/ws", device: device)
            }
            throw TransportErrors.map(error, method: "GET", path: "/api/ws", device: device, timeout: nil)
        }
        return HIDSendReceipt(sequence: sequence, writtenAt: writtenAt)
    }

    /// How long before a deadline the event loop's timer fires; the rest is spun (at 100
    /// reports a second, 3% of one core).
    static let timerLead = 0.0003

    static func frame(_ frame: HIDWireFrame) -> WebSocketFrame {
        switch frame {
        case .binary(let bytes):
            return WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: ByteBuffer(bytes: bytes))
        case .text(let text):
            return WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        }
    }

    func startHeartbeat(every interval: Duration) {
        guard interval > .zero else { return }
        let task = Task { [weak self] in
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                guard let self, self.isOpen else { return }
                _ = try? await self.send(.heartbeat)
            }
        }
        heartbeatTask.withLock { $0 = task }
    }

    /// Closes the session (close code 1000). Before 2.4.1 the device keeps keys pressed when
    /// the socket closes, so all-released keyboard and mouse reports are sent first unless
    /// `releaseInput` is false.
    public func close(releaseInput: Bool = true) async {
        heartbeatTask.withLock { $0?.cancel() }
        guard connection.closeInfo == nil, channel.isActive else { return }
        if releaseInput && releaseOnClose {
            _ = try? await send(.keyboard(.released))
            _ = try? await send(.relativeMouse(RelativeMouseReport()))
        }
        connection.markClosing()
        var payload = ByteBuffer()
        payload.write(webSocketErrorCode: .normalClosure)
        let closeFrame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)
        _ = try? await channel.writeAndFlush(closeFrame).get()
        // Wait briefly for the device's close frame, then drop the connection.
        let channel = self.channel
        let closed = channel.closeFuture
        let timer = channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        _ = try? await closed.get()
        timer.cancel()
    }

    deinit {
        heartbeatTask.withLock { $0?.cancel() }
        channel.close(promise: nil)
    }
}

/// Shared between the channel handler (event loop) and the session.
final class WebSocketConnectionState: Sendable {
    private struct State {
        var close: HIDSessionClose?
        var closingByClient = false
    }
    private let state = Mutex(State())
    private let onFinish = Mutex<(@Sendable () -> Void)?>(nil)
    let continuation: AsyncStream<HIDSessionEvent>.Continuation

    init(continuation: AsyncStream<HIDSessionEvent>.Continuation) { self.continuation = continuation }

    var closeInfo: HIDSessionClose? { state.withLock { $0.close } }
    var closingByClient: Bool { state.withLock { $0.closingByClient } }
    func markClosing() { state.withLock { $0.closingByClient = true } }

    /// Records the end once and finishes the event stream.
    func finish(_ info: HIDSessionClose) {
        let first = state.withLock { state -> Bool in
            guard state.close == nil else { return false }
            state.close = info
            return true
        }
        guard first else { return }
        continuation.yield(.closed(info))
        continuation.finish()
        onFinish.withLock { callback in
            callback?()
            callback = nil
        }
    }

    /// Runs `callback` once the session ended (at once if it already has).
    func whenFinished(_ callback: @escaping @Sendable () -> Void) {
        let runNow = onFinish.withLock { slot -> Bool in
            if closeInfo != nil { return true }
            slot = callback
            return false
        }
        if runNow { callback() }
    }
}

/// Reads frames on the event loop: data to events, pings answered, close handshake completed.
final class WebSocketFrameHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let connection: WebSocketConnectionState
    let device: String
    private var fragments: ByteBuffer?
    private var fragmentOpcode: WebSocketOpcode = .binary
    private var receivedClose: (code: Int?, reason: String)?
    private static let maximumMessage = 1 << 20

    init(connection: WebSocketConnectionState, device: String) {
        self.connection = connection
        self.device = device
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            if frame.fin {
                deliver(opcode: frame.opcode, payload: frame.unmaskedData)
            } else {
                fragmentOpcode = frame.opcode
                fragments = frame.unmaskedData
            }
        case .continuation:
            guard var buffer = fragments else { return }
            var piece = frame.unmaskedData
            buffer.writeBuffer(&piece)
            if buffer.readableBytes > Self.maximumMessage {
                fragments = nil
                fail(context: context, NanoKVMError(.protocol, "the device sent a WebSocket message over 1 MiB", path: "/api/ws", device: device))
                return
            }
            if frame.fin {
                fragments = nil
                deliver(opcode: fragmentOpcode, payload: buffer)
            } else {
                fragments = buffer
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readableBytes >= 2 ? payload.readInteger(as: UInt16.self).map(Int.init) : nil
            let reason = payload.readString(length: payload.readableBytes) ?? ""
            receivedClose = (code, reason)
            if !connection.closingByClient {
                // Echo the close frame, then drop the connection.
                var echo = ByteBuffer()
                if let code { echo.writeInteger(UInt16(truncatingIfNeeded: code)) }
                let reply = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo)
                context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in context.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        default:
            break
        }
    }

    private func deliver(opcode: WebSocketOpcode, payload: ByteBuffer) {
        let bytes = Array(payload.readableBytesView)
        if opcode == .binary {
            connection.continuation.yield(.binary(bytes))
            return
        }
        let text = String(decoding: bytes, as: UTF8.self)
        connection.continuation.yield(Self.event(fromText: text))
    }

    /// Parses `{"type":…,"data":"<JSON text>"}` (2.4.2+) and `{"type":"stream","state":n}` (2.1.0).
    static func event(fromText text: String) -> HIDSessionEvent {
        guard let value = try? JSONValue.parse(text), let type = value["type"]?.stringValue else { return .text(text) }
        if type == "stream", let state = value["state"]?.intValue { return .streamState(state) }
        var data = value["data"] ?? .null
        if let inner = data.stringValue, let parsed = try? JSONValue.parse(inner) { data = parsed }
        switch type {
        case "capture-status": return .captureStatus(data)
        case "h264-mode-status": return .h264ModeStatus(data)
        case "hid-led-status":
            if let reader = try? DataReader(data, "hid-led-status"), let leds = try? KeyboardLEDs(reader: reader) {
                return .keyboardLEDs(leds)
            }
            return .message(type: type, data: data)
        default:
            return .message(type: type, data: data)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // The server may drop the connection right after its 101: if the channel went inactive
        // before this handler was in the pipeline, channelInactive will never reach it.
        if !context.channel.isActive { recordEnd() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        recordEnd()
        context.fireChannelInactive()
    }

    /// The connection is gone: finish the session with the close frame seen, if any.
    private func recordEnd() {
        let closedByClient = connection.closingByClient
        if let receivedClose {
            connection.finish(HIDSessionClose(code: receivedClose.code, reason: receivedClose.reason, closedByClient: closedByClient, error: nil))
        } else {
            let error = closedByClient ? nil : NanoKVMError(.transport, "the WebSocket connection dropped without a close frame", path: "/api/ws", device: device)
            connection.finish(HIDSessionClose(code: nil, reason: "", closedByClient: closedByClient, error: error))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, TransportErrors.map(error, method: "GET", path: "/api/ws", device: device, timeout: nil))
    }

    private func fail(context: ChannelHandlerContext, _ error: NanoKVMError) {
        connection.finish(HIDSessionClose(code: nil, reason: "", closedByClient: false, error: error))
        context.close(promise: nil)
    }
}

/// Records the status of an answer that refused the upgrade.
final class UpgradeRefusalRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<Int>
    init(promise: EventLoopPromise<Int>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { promise.succeed(Int(head.status.code)) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
    }
}

enum UpgradeOutcome: Sendable {
    case upgraded(any Channel)
    case refused(EventLoopFuture<Int>)
}

extension NanoKVMClient {
    /// Opens `/api/ws` with the session cookie and no Origin header. A 401 on the upgrade logs
    /// in again once; a 403 raises `permission`.
    public func openHIDSession(_ options: HIDSessionOptions = HIDSessionOptions()) async throws(NanoKVMError) -> HIDSession {
        let endpoint = APIEndpoint.webSocket
        try await firmwareConfirmed()
        try profile.require(endpoint, device: device)
        try checkOpen(endpoint.method, endpoint.path)
        let (token, generation) = await session.snapshot()
        var attempt = try await connectWebSocket(token: token, options: options)
        if case .refusedWithStatus(401) = attempt, await session.canLogIn {
            switch await session.relogin(after: generation) {
            case .success: break
            case .failure(var error):
                error.method = "GET"; error.path = endpoint.path
                throw error
            }
            let (renewed, _) = await session.snapshot()
            attempt = try await connectWebSocket(token: renewed, options: options)
        }
        switch attempt {
        case .session(let hidSession):
            let interval = options.heartbeatInterval ?? profile.heartbeatInterval
            hidSession.startHeartbeat(every: interval)
            let id = register { [weak hidSession] in
                guard let hidSession else { return }
                Task { await hidSession.close() }
            }
            hidSession.connection.whenFinished { [weak self] in self?.unregister(id) }
            return hidSession
        case .refusedWithStatus(let status):
            let kind: NanoKVMError.Kind
            let message: String
            switch status {
            case 401: kind = .auth; message = "unauthorized (the token was rejected)"
            case 403: kind = .permission; message = "forbidden (role, or the device rejected the Origin)"
            case 404: kind = .unsupported; message = "the device has no WebSocket endpoint"
            case 500...599: kind = .api; message = "the device failed (HTTP \(status))"
            default: kind = .protocol; message = "the WebSocket upgrade was refused (HTTP \(status))"
            }
            throw NanoKVMError(kind, message, status: status, method: "GET", path: endpoint.path, device: device)
        }
    }

    enum WebSocketAttempt {
        case session(HIDSession)
        case refusedWithStatus(Int)
    }

    func connectWebSocket(token: String?, options: HIDSessionOptions) async throws(NanoKVMError) -> WebSocketAttempt {
        let path = APIEndpoint.webSocket.path
        let address = self.address
        let device = self.device
        let sslContext: NIOSSLContext?
        do {
            sslContext = try transport.tls.configuration.map { configuration in
                var configuration = configuration
                // NIOSSL only calls the custom callback (our pin check) when verification is on.
                if transport.tls.pinnedSHA256 != nil { configuration.certificateVerification = .noHostnameVerification }
                return try NIOSSLContext(configuration: configuration)
            }
        } catch {
            throw TransportErrors.map(error, method: "GET", path: path, device: device, timeout: nil)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: address.hostHeader)
        headers.add(name: "User-Agent", value: "kvmlua")
        if let token { headers.add(name: "Cookie", value: "nano-kvm-token=\(token)") }
        // Deliberately no Origin header (§8.1).
        let requestHead = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        let (events, continuation) = AsyncStream.makeStream(of: HIDSessionEvent.self, bufferingPolicy: .bufferingNewest(options.bufferedEvents))
        let connection = WebSocketConnectionState(continuation: continuation)
        let serverName = address.host.isIPAddress ? nil : address.host
        let pin = transport.tls.pinnedSHA256

        let upgradeTimeout = timeout
        do {
            let outcome: EventLoopFuture<UpgradeOutcome> = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(upgradeTimeout.timeAmount)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .connect(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            let tls: NIOSSLClientHandler
                            if let pin {
                                // The pin replaces chain verification, checked in the handshake.
                                tls = try NIOSSLClientHandler(
                                    context: sslContext, serverHostname: serverName,
                                    customVerificationCallback: { certificates, promise in
                                        do {
                                            try TLSSetup.checkPin(certificates.first, pin)
                                            promise.succeed(.certificateVerified)
                                        } catch {
                                            promise.succeed(.failed)
                                        }
                                    })
                            } else {
                                tls = try NIOSSLClientHandler(context: sslContext, serverHostname: serverName)
                            }
                            try channel.pipeline.syncOperations.addHandler(tls)
                        }
                        let upgrader = NIOTypedWebSocketClientUpgrader<UpgradeOutcome>(
                            maxFrameSize: 1 << 20,
                            upgradePipelineHandler: { channel, _ in
                                channel.eventLoop.makeCompletedFuture {
                                    try channel.pipeline.syncOperations.addHandler(WebSocketFrameHandler(connection: connection, device: device))
                                    return UpgradeOutcome.upgraded(channel)
                                }
                            })
                        let configuration = NIOTypedHTTPClientUpgradeConfiguration<UpgradeOutcome>(
                            upgradeRequestHead: requestHead, upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in
                                channel.eventLoop.makeCompletedFuture {
                                    let status = channel.eventLoop.makePromise(of: Int.self)
                                    try channel.pipeline.syncOperations.addHandler(UpgradeRefusalRecorder(promise: status))
                                    return UpgradeOutcome.refused(status.futureResult)
                                }
                            })
                        var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                        pipeline.leftOverBytesStrategy = .forwardBytes
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
                    }
                }
            // The upgrade answer must come within the request timeout.
            let loop = outcome.eventLoop
            let promise = loop.makePromise(of: UpgradeOutcome.self)
            let timer = loop.scheduleTask(in: upgradeTimeout.timeAmount) {
                promise.fail(NanoKVMError(.timeout, "no answer to the WebSocket upgrade after \(TransportErrors.formatSeconds(upgradeTimeout))"))
            }
            outcome.cascade(to: promise)
            let result: UpgradeOutcome
            do {
                result = try await promise.futureResult.get()
                timer.cancel()
            } catch {
                timer.cancel()
                throw error
            }
            switch result {
            case .upgraded(let channel):
                let session = HIDSession(channel: channel, connection: connection, events: events, profile: profile, device: device)
                return .session(session)
            case .refused(let statusFuture):
                let status = try await statusFuture.get()
                continuation.finish()
                return .refusedWithStatus(status)
            }
        } catch {
            continuation.finish()
            throw TransportErrors.map(error, method: "GET", path: path, device: device, timeout: upgradeTimeout)
        }
    }
}
