// `/api/ws` (§8): the upgrade checks, the server events sent on connect and on change, input
// decoding for both encodings (binary HID reports ≥2.3.2, JSON arrays before), the 90 s read
// deadline renewed only by data frames (≥2.5.0), release of held keys on close (≥2.4.1),
// and main's session revocation (close code 4401).

import Foundation
internal import NIOCore
internal import NIOHTTP1
import NanoKVM
import Synchronization

/// What the device pushes to its WebSocket connections.
enum WebSocketCommand: Sendable {
    case text(String)
    case checkSession
    case drop
}

/// Open `/api/ws` connections and the state their server events report.
final class EventHub: Sendable {
    private struct State {
        var next = 0
        var connections: [Int: AsyncStream<WebSocketCommand>.Continuation] = [:]
        var captureStatus: (result: Int, at: Date)?
        var h264Generation = UUID().uuidString.lowercased()
    }

    private let state = Mutex(State())
    /// Formats and filters events for the firmware version (set once by the device).
    let sendCaptureEvents = Mutex(false)
    let sendLEDEvents = Mutex(false)
    let ledTimestamp = Mutex<Date?>(nil)

    func register() -> (id: Int, commands: AsyncStream<WebSocketCommand>) {
        let (stream, continuation) = AsyncStream<WebSocketCommand>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let id = state.withLock { s -> Int in
            let id = s.next
            s.next += 1
            s.connections[id] = continuation
            return id
        }
        return (id, stream)
    }

    func unregister(_ id: Int) {
        _ = state.withLock { $0.connections.removeValue(forKey: id) }?.finish()
    }

    var connectionCount: Int { state.withLock { $0.connections.count } }

    func broadcast(_ command: WebSocketCommand) {
        let targets = state.withLock { Array($0.connections.values) }
        for target in targets { target.yield(command) }
    }

    func dropWebSockets() { broadcast(.drop) }
    func sessionsRevoked() { broadcast(.checkSession) }

    // MARK: Server events (§8.5)

    static func message(_ type: String, _ data: JSONValue) -> String {
        GoJSON.encodeString(["type": .string(type), "data": .string(GoJSON.encodeString(data))])
    }

    static func captureMessage(result: Int, at date: Date) -> String {
        let messages = [
            -1: "No image captured", -2: "Encoder error", -3: "Image buffer full", -4: "Changing image resolution",
            -5: "Retrieving image", -6: "Unsupported HDMI resolution", -7: "HDMI input resolution error",
        ]
        let ok = result >= 0
        let severity = ok ? "" : (result == -4 || result == -5 ? "warning" : "error")
        let text = ok ? "" : messages[result] ?? "Capture failed"
        return message("capture-status", [
            "ok": .bool(ok), "result": .integer(Int64(result)), "message": .string(text), "mode": "mjpeg",
            "severity": .string(severity), "updatedAt": .string(GoTime.rfc3339Nano(date)),
        ])
    }

    func captureResult(_ result: Int) {
        let changed = state.withLock { s -> Bool in
            let previous = s.captureStatus?.result
            s.captureStatus = (result, Date())
            guard let previous else { return true }
            if previous >= 0, result >= 0 { return false }
            return previous != result
        }
        if changed, sendCaptureEvents.withLock({ $0 }), let snapshot = captureSnapshot() { broadcast(.text(snapshot)) }
    }

    func captureSnapshot() -> String? {
        guard let status = state.withLock({ $0.captureStatus }) else { return nil }
        return Self.captureMessage(result: status.result, at: status.at)
    }

    func h264Snapshot() -> String {
        let generation = state.withLock { $0.h264Generation }
        return Self.message("h264-mode-status", [
            "generation": .string(generation), "revision": 0, "direct": 0, "webrtc": 0, "mixed": false,
        ])
    }

    static func ledMessage(_ input: SimulatorInputState, at date: Date?) -> String {
        let stamp = input.ledsKnown ? GoTime.rfc3339Nano(date ?? Date()) : "0001-01-01T00:00:00Z"
        return message("hid-led-status", [
            "numLock": .bool(input.numLock), "capsLock": .bool(input.capsLock), "scrollLock": .bool(input.scrollLock),
            "known": .bool(input.ledsKnown), "updatedAt": .string(stamp),
        ])
    }

    func ledsChanged(_ input: SimulatorInputState) {
        let now = Date()
        ledTimestamp.withLock { $0 = now }
        if sendLEDEvents.withLock({ $0 }) { broadcast(.text(Self.ledMessage(input, at: now))) }
    }
}

/// Per-connection bookkeeping shared by the connection's tasks.
private final class WebSocketSession: Sendable {
    struct State {
        var lastData = ContinuousClock.now
        var heldKeyboard = false
        var heldButtons = false
        var lastMouse: (kind: SimulatorReport.Kind, bytes: [UInt8])?
        var fragments: [UInt8] = []
        var fragmentIsText = false
    }

    let state = Mutex(State())
}

extension Device {
    static func originAllowed(_ origin: String?, host: String?, forwardedProto: String?) -> Bool {
        guard let origin = origin?.trimmingCharacters(in: .whitespaces), !origin.isEmpty else { return true }
        guard let url = URL(string: origin), let originHost = url.host else { return false }
        let scheme = (forwardedProto?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
            .flatMap { $0.isEmpty ? nil : $0 } ?? "http"
        let defaultPort: (String) -> String = { ["https", "wss"].contains($0.lowercased()) ? "443" : "80" }
        let originPort = url.port.map(String.init) ?? defaultPort(url.scheme ?? "http")
        let requestHost = host ?? ""
        var hostName = requestHost
        var hostPort = ""
        if requestHost.hasPrefix("[") {
            if let close = requestHost.firstIndex(of: "]") {
                hostName = String(requestHost[requestHost.index(after: requestHost.startIndex)..<close])
                let rest = requestHost[requestHost.index(after: close)...]
                if rest.hasPrefix(":") { hostPort = String(rest.dropFirst()) }
            }
        } else if let colon = requestHost.lastIndex(of: ":") {
            hostName = String(requestHost[..<colon])
            hostPort = String(requestHost[requestHost.index(after: colon)...])
        }
        if hostPort.isEmpty { hostPort = defaultPort(scheme) }
        return originHost.lowercased() == hostName.lowercased() && originPort == hostPort
    }

    // MARK: SimRequestHandler (upgraded connections)

    func runWebSocket(_ connection: WebSocketConnection) async {
        let request = connection.request
        if request.path == "/api/vm/terminal" {
            guard (try? await connection.accept()) != nil else { return }
            try? await connection.send(.binary, Array("nanokvm-sim: the web terminal is not simulated\r\n".utf8))
            await connection.sendClose(code: 1000, reason: "")
            return
        }
        let session = WebSocketSession()
        let (id, commands) = events.register()
        defer { events.unregister(id) }
        do {
            try await connection.accept()
            // §8.5 / §12.18: events on connect.
            if profile.atLeast("2.4.2"), let capture = events.captureSnapshot() {
                try await connection.sendText(capture)
            }
            if profile.atLeast("2.5.0") {
                try await connection.sendText(events.h264Snapshot())
                let stamp = events.ledTimestamp.withLock { $0 }
                try await connection.sendText(EventHub.ledMessage(host.input, at: stamp))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while let frame = try await connection.readFrame() {
                        if try await self.handleFrame(frame, session: session, connection: connection) { break }
                    }
                }
                group.addTask {
                    for await command in commands {
                        switch command {
                        case let .text(text):
                            try? await connection.sendText(text)
                        case .drop:
                            await connection.drop()
                            return
                        case .checkSession:
                            if !self.sessionStillValid(request) {
                                await connection.sendClose(code: 4401, reason: "session expired or revoked")
                                await connection.drop()
                                return
                            }
                        }
                    }
                }
                if profile.webSocketDeadline, let deadline = configuration.heartbeatDeadline {
                    group.addTask {
                        while !Task.isCancelled {
                            let expiry = session.state.withLock { $0.lastData } + deadline
                            if ContinuousClock.now >= expiry {
                                // No close frame: the real server just drops the TCP connection.
                                await connection.drop()
                                return
                            }
                            try await Task.sleep(until: expiry, clock: .continuous)
                        }
                    }
                }
                if profile.multiUser, !configuration.authenticationDisabled {
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: .milliseconds(500))
                            if !self.sessionStillValid(request) {
                                await connection.sendClose(code: 4401, reason: "session expired or revoked")
                                await connection.drop()
                                return
                            }
                        }
                    }
                }
                // The first task to finish (reader ended, drop, deadline, revocation) ends the connection.
                _ = try await group.next()
                group.cancelAll()
            }
        } catch {
            // Connection reset, malformed frame, or closed under us.
        }
        await connection.drop()
        if profile.releaseOnClose { releaseHeld(session) }
    }

    /// Returns true when the connection should end (close frame handled).
    private func handleFrame(_ frame: WSFrame, session: WebSocketSession, connection: WebSocketConnection) async throws -> Bool {
        switch frame.opcode {
        case .ping:
            try await connection.send(.pong, frame.payload)
            return false
        case .pong:
            return false
        case .close:
            let reply = frame.payload.count >= 2 ? Array(frame.payload[0..<2]) : []
            try? await connection.send(.close, reply)
            return true
        case .text, .binary:
            if frame.fin {
                await handleMessage(frame.payload, isText: frame.opcode == .text, session: session)
            } else {
                session.state.withLock { $0.fragments = frame.payload; $0.fragmentIsText = frame.opcode == .text }
            }
            return false
        case .continuation:
            let complete = session.state.withLock { s -> ([UInt8], Bool)? in
                s.fragments += frame.payload
                guard frame.fin else { return nil }
                defer { s.fragments = [] }
                return (s.fragments, s.fragmentIsText)
            }
            if let (message, isText) = complete { await handleMessage(message, isText: isText, session: session) }
            return false
        }
    }

    private func handleMessage(_ bytes: [UInt8], isText: Bool, session: WebSocketSession) async {
        // Every data message renews the read deadline, whatever it contains.
        session.state.withLock { $0.lastData = .now }
        guard !bytes.isEmpty else { return }
        if profile.binaryWebSocket {
            switch bytes[0] {
            case 0x01 where bytes.count == 9:
                deliver(.keyboard, Array(bytes[1...]), session: session)
            case 0x02 where bytes.count == 5:
                deliver(.relativeMouse, Array(bytes[1...]), session: session)
            case 0x02 where bytes.count == 7:
                deliver(.absoluteMouse, Array(bytes[1...]), session: session)
            default:
                break  // heartbeat, unknown type or wrong length: ignored, never answered
            }
            return
        }
        // ≤2.3.1: a JSON array of integers. Short or malformed arrays are ignored (the real
        // server would crash on them).
        guard let value = try? JSONValue.parse(bytes: bytes), let items = value.arrayValue else { return }
        let numbers = items.compactMap { $0.intValue }
        guard numbers.count == items.count, let type = numbers.first else { return }
        switch type {
        case 1 where numbers.count >= 6:
            let usage = UInt8(truncatingIfNeeded: numbers[1])
            var modifiers: UInt8 = 0
            if profile.legacyModifierFlags {
                if numbers[2] == 1 { modifiers |= 0x01 }
                if numbers[3] == 1 { modifiers |= 0x02 }
                if numbers[4] == 1 { modifiers |= 0x04 } else if numbers[4] == 2 { modifiers |= 0x40 }
                if numbers[5] == 1 { modifiers |= 0x08 }
            } else {
                for field in numbers[2...5] { modifiers |= UInt8(truncatingIfNeeded: field) }
            }
            let report: [UInt8] = usage == 0 ? [0, 0, 0, 0, 0, 0, 0, 0] : [modifiers, 0, usage, 0, 0, 0, 0, 0]
            deliver(.keyboard, report, session: session)
        case 2 where numbers.count >= 5:
            let (event, button, x, y) = (numbers[1], numbers[2], numbers[3], numbers[4])
            switch event {
            case 0:
                deliver(.relativeMouse, [0, 0, 0, 0], session: session)
            case 1:
                let bit: UInt8?
                if profile.legacyModifierFlags {
                    bit = [1: 0x01, 2: 0x02, 3: 0x04][button]
                } else {
                    bit = [1, 2, 4].contains(button) ? UInt8(button) : nil
                }
                if let bit { deliver(.relativeMouse, [bit, 0, 0, 0], session: session) }
            case 2:
                let ux = UInt16(truncatingIfNeeded: x)
                let uy = UInt16(truncatingIfNeeded: y)
                deliver(.absoluteMouse, [0, UInt8(ux & 0xFF), UInt8(ux >> 8), UInt8(uy & 0xFF), UInt8(uy >> 8), 0], session: session)
            case 3:
                deliver(.relativeMouse, [UInt8(truncatingIfNeeded: button), UInt8(truncatingIfNeeded: x), UInt8(truncatingIfNeeded: y), 0],
                    session: session)
            case 4:
                let wheel: Int8 = profile.atLeast("2.3.1") ? (y < 0 ? -1 : 1) : (y > 0 ? -1 : 1)
                deliver(.relativeMouse, [0, 0, 0, UInt8(bitPattern: wheel)], session: session)
            default:
                break
            }
        default:
            break  // [0] heartbeat and unknown types
        }
    }

    private func deliver(_ kind: SimulatorReport.Kind, _ report: [UInt8], session: WebSocketSession) {
        host.receive(kind, report, source: .webSocket)
        session.state.withLock { s in
            switch kind {
            case .keyboard:
                s.heldKeyboard = report.contains { $0 != 0 }
            case .relativeMouse, .absoluteMouse:
                s.heldButtons = report[0] != 0
                s.lastMouse = (kind, report)
            }
        }
        let drop = state.withLock { s -> Bool in
            guard let remaining = s.webSocketDropAfterReports else { return false }
            if remaining <= 1 {
                s.webSocketDropAfterReports = nil
                return true
            }
            s.webSocketDropAfterReports = remaining - 1
            return false
        }
        if drop { events.dropWebSockets() }
    }

    /// 2.4.1+: release what this connection still held when it closed.
    private func releaseHeld(_ session: WebSocketSession) {
        let (keyboard, buttons, lastMouse) = session.state.withLock { ($0.heldKeyboard, $0.heldButtons, $0.lastMouse) }
        // 2.5.0+ releases only what is held; 2.4.1–2.4.3 send the release reports regardless.
        let always = !profile.atLeast("2.5.0")
        if keyboard || always {
            host.receive(.keyboard, [0, 0, 0, 0, 0, 0, 0, 0], source: .release)
        }
        if buttons || always, let lastMouse {
            var report = lastMouse.bytes
            report[0] = 0
            if lastMouse.kind == .absoluteMouse { report[5] = 0 } else { report[1] = 0; report[2] = 0; report[3] = 0 }
            host.receive(lastMouse.kind, report, source: .release)
        }
    }
}
