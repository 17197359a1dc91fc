// Stream control (frame detection, protocol §6.5) and the MJPEG stream over AsyncHTTPClient
// (§9.1): an AsyncThrowingStream of frames with their receive time, cancellable; the HTTP
// connection is closed as soon as the consumer stops.

import AsyncHTTPClient
import NIOCore
import Synchronization

/// One JPEG from the MJPEG stream.
public struct MJPEGFrame: Sendable {
    /// The JPEG bytes (SOI … EOI).
    public let jpeg: [UInt8]
    /// `MonotonicClock.now()` when the frame's last byte arrived.
    public let receivedAt: Double
    /// 1 for the first frame of this stream.
    public let index: Int
    /// Parts the parser dropped so far in this stream (truncated or garbled).
    public let skippedParts: Int

    public var size: Int { jpeg.count }
}

/// Options for `StreamAPI.mjpeg`.
public struct MJPEGStreamOptions: Sendable {
    /// Raise `timeout` when no byte arrives for this long (the device sends nothing, not even
    /// headers, while it has no frame; frame detection keeps a static screen silent). Nil waits
    /// forever.
    public var stallTimeout: Duration?
    /// Frames kept when the consumer is slower than the stream; older ones are dropped, as
    /// live video wants.
    public var bufferedFrames: Int
    /// Largest frame accepted.
    public var maximumFrameSize: Int

    public init(stallTimeout: Duration? = nil, bufferedFrames: Int = 2, maximumFrameSize: Int = 32 << 20) {
        self.stallTimeout = stallTimeout
        self.bufferedFrames = max(1, bufferedFrames)
        self.maximumFrameSize = maximumFrameSize
    }
}

public struct StreamAPI: Sendable {
    let client: NanoKVMClient

    // MARK: Frame detection

    /// Whether MJPEG frame detection is on. Firmware up to 2.2.2 reports it; later firmware
    /// cannot, so the value this client last set is returned, else `unsupported`.
    public func frameDetection() async throws(NanoKVMError) -> Bool {
        if client.profile.frameDetectionToggles {
            let data = try await client.call(.frameDetectionState)
            return try client.read(data, .frameDetectionState) { reader throws(NanoKVMError) in try reader.bool("enabled") }
        }
        if let known = client.state.withLock({ $0.frameDetection }) { return known }
        throw client.unsupported(
            .frameDetection, "firmware 2.2.3 and later cannot report frame detection and this client has not set it",
            path: APIEndpoint.frameDetectionState.path)
    }

    /// Switches frame detection (≤2.2.2 only toggles, so the state is read first).
    public func setFrameDetection(_ enabled: Bool) async throws(NanoKVMError) {
        if client.profile.frameDetectionToggles {
            let current = try await frameDetection()
            if current != enabled {
                let data = try await client.call(.frameDetection)
                let now = try client.read(data, .frameDetection) { reader throws(NanoKVMError) in try reader.bool("enabled") }
                guard now == enabled else {
                    throw NanoKVMError(.api, "frame detection did not switch", method: "POST", path: APIEndpoint.frameDetection.path, device: client.device)
                }
            }
        } else {
            try await client.call(.frameDetection, body: .json(["enabled": .bool(enabled)]))
        }
        client.state.withLock { $0.frameDetection = enabled }
    }

    /// Pauses frame detection so a static screen still sends a frame. 2.2.3+: blocks for
    /// `seconds` and then switches detection **on**; ≤2.2.2: pauses 20 s in the background and
    /// returns at once.
    public func pauseFrameDetection(seconds: Int = 10) async throws(NanoKVMError) {
        if client.profile.frameDetectionToggles {
            try await client.call(.pauseFrameDetection)
            return
        }
        guard seconds > 0, seconds <= 3600 else {
            throw NanoKVMError(.usage, "pause must be 1–3600 s", method: "POST", path: APIEndpoint.pauseFrameDetection.path, device: client.device)
        }
        try await client.call(
            .pauseFrameDetection, body: .json(["duration": .integer(Int64(seconds))]), timeout: client.timeout + .seconds(seconds))
        client.state.withLock { $0.frameDetection = true }
    }

    // MARK: MJPEG

    /// Opens `GET /api/stream/mjpeg` and yields frames as they arrive. Errors thrown by the
    /// sequence are `NanoKVMError`s. Stop iterating (or cancel the task) to close the connection.
    public func mjpeg(_ options: MJPEGStreamOptions = MJPEGStreamOptions()) -> AsyncThrowingStream<MJPEGFrame, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: MJPEGFrame.self, throwing: (any Error).self, bufferingPolicy: .bufferingNewest(options.bufferedFrames))
        let client = self.client
        let task = Task {
            do {
                try await MJPEGReader.run(client: client, options: options, continuation: continuation)
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        let registration = client.register { task.cancel() }
        continuation.onTermination = { _ in
            task.cancel()
            client.unregister(registration)
        }
        return stream
    }
}

enum MJPEGReader {
    static func run(
        client: NanoKVMClient, options: MJPEGStreamOptions, continuation: AsyncThrowingStream<MJPEGFrame, any Error>.Continuation
    ) async throws(NanoKVMError) {
        let endpoint = APIEndpoint.mjpegStream
        try client.profile.require(endpoint, device: client.device)
        try client.checkOpen(endpoint.method, endpoint.path)
        let spec = HTTPRequestSpec(method: .GET, path: endpoint.path, timeout: options.stallTimeout ?? .seconds(86400 * 365))
        let lastActivity = ActivityClock()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await read(client: client, spec: spec, options: options, lastActivity: lastActivity, continuation: continuation)
                }
                if let stall = options.stallTimeout {
                    group.addTask {
                        try await watchdog(stall: stall, lastActivity: lastActivity, spec: spec, device: client.device)
                    }
                }
                // The first task to end decides; the watchdog never ends by itself.
                try await group.next()
                group.cancelAll()
            }
        } catch {
            throw TransportErrors.map(error, method: "GET", path: endpoint.path, device: client.device, timeout: options.stallTimeout)
        }
    }

    static func watchdog(stall: Duration, lastActivity: ActivityClock, spec: HTTPRequestSpec, device: String) async throws {
        let limit = stall.seconds
        while true {
            let idle = MonotonicClock.now() - lastActivity.last
            if idle >= limit {
                throw NanoKVMError(
                    .timeout, "no video data for \(TransportErrors.formatSeconds(stall))", method: "GET", path: spec.path, device: device)
            }
            try await Task.sleep(for: .seconds(max(0.01, min(limit - idle, 0.5))))
        }
    }

    static func read(
        client: NanoKVMClient, spec: HTTPRequestSpec, options: MJPEGStreamOptions, lastActivity: ActivityClock,
        continuation: AsyncThrowingStream<MJPEGFrame, any Error>.Continuation
    ) async throws {
        // The body may stream for hours: no overall deadline, the watchdog covers stalls.
        let deadline = NIODeadline.distantFuture
        let (token, generation) = await client.session.snapshot()
        var response = try await client.transport.start(spec, cookie: token, deadline: deadline)
        if response.status == .unauthorized, await client.session.canLogIn {
            switch await client.session.relogin(after: generation) {
            case .success: break
            case .failure(var error):
                error.method = "GET"; error.path = spec.path
                throw error
            }
            let (renewed, _) = await client.session.snapshot()
            response = try await client.transport.start(spec, cookie: renewed, deadline: deadline)
        }
        lastActivity.touch(MonotonicClock.now())
        guard response.status == .ok else {
            let collected = try? await response.body.collect(upTo: 64 << 10)
            let body = collected.map { Array($0.readableBytesView) } ?? []
            let result = HTTPResult(status: Int(response.status.code), headers: response.headers, body: body)
            _ = try NanoKVMClient.checkedEnvelope(result, spec: spec, device: client.device)
            throw NanoKVMError(.protocol, "unexpected answer to the MJPEG request", status: result.status, method: "GET", path: spec.path, device: client.device)
        }
        let contentType = response.headers.first(name: "Content-Type") ?? ""
        guard contentType.lowercased().hasPrefix("multipart/") else {
            throw NanoKVMError(
                .protocol, "the MJPEG stream is '\(contentType)', not multipart", status: 200, method: "GET", path: spec.path,
                device: client.device)
        }
        let boundary = MJPEGParser.boundary(fromContentType: contentType) ?? "frame"
        var parser = MJPEGParser(boundary: boundary, maximumFrameSize: options.maximumFrameSize)
        for try await chunk in response.body {
            let now = MonotonicClock.now()
            lastActivity.touch(now)
            var completed: [[UInt8]] = []
            chunk.withUnsafeReadableBytes { bytes in
                parser.feed(bytes) { completed.append($0) }
            }
            var index = parser.framesParsed - completed.count
            for jpeg in completed {
                index += 1
                continuation.yield(MJPEGFrame(jpeg: jpeg, receivedAt: now, index: index, skippedParts: parser.skippedParts))
            }
        }
        // The device ended the stream (multi-user firmware: session expired or revoked).
    }
}

extension NanoKVMClient {
    public var stream: StreamAPI { StreamAPI(client: self) }
}

/// When bytes last arrived, shared by the reader and its watchdog.
final class ActivityClock: Sendable {
    private let time = Mutex(MonotonicClock.now())
    var last: Double { time.withLock { $0 } }
    func touch(_ now: Double) { time.withLock { $0 = now } }
}
