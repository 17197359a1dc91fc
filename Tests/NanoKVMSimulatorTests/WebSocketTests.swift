// `/api/ws` (§8, §12.15–21): upgrade rules, server events, both input encodings decoded into
// the virtual host, heartbeat deadline, release on close, revocation.

import Foundation
import NanoKVM
import Testing
@testable import NanoKVMSimulator

@Suite(.timeLimit(.minutes(1))) struct WebSocketTests {
    @Test func upgradeNeedsTheCookieAndHappensOnKeepAliveConnections() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                let refused = try await conn.upgrade(cookie: nil)
                #expect(refused.status == 401)
                #expect(refused.text == #""unauthorized""#)
                // Same connection: a normal request, then a successful upgrade.
                #expect(try await conn.request("GET", "/api/vm/info", cookie: token).status == 200)
                let upgraded = try await conn.upgrade(cookie: token)
                #expect(upgraded.status == 101)
                #expect(upgraded.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            }
            // A plain GET with a valid cookie is not a handshake: gorilla's 400.
            let plain = try await sim.get("/api/ws", token: token)
            #expect(plain.status == 400)
            #expect(plain.text == "Bad Request\n")
            // main rejects a foreign Origin.
            let foreign = try await withConnection(sim.port) { try await $0.upgrade(cookie: token, origin: "http://evil.example") }
            #expect(foreign.status == 403)
            #expect(await sim.state().lastWebSocketOrigin == nil)
        }
    }

    @Test func currentSendsEventsOnConnect() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                #expect(try await conn.upgrade(cookie: token).status == 101)
                let first = try #require(try await conn.readFrame())
                #expect(first.opcode == 1)
                let h264 = try JSONValue.parse(bytes: first.payload)
                #expect(h264["type"]?.stringValue == "h264-mode-status")
                let inner = try JSONValue.parse(try #require(h264["data"]?.stringValue))
                #expect(inner["mixed"] == false)
                let second = try #require(try await conn.readFrame())
                let led = try JSONValue.parse(bytes: second.payload)
                #expect(led["type"]?.stringValue == "hid-led-status")
                #expect(led["data"]?.stringValue == #"{"numLock":false,"capsLock":false,"scrollLock":false,"known":false,"updatedAt":"0001-01-01T00:00:00Z"}"#)
                // Caps Lock on the host changes its LED and pushes an event.
                try await conn.sendBinary([1, 0, 0, 0x39, 0, 0, 0, 0, 0])
                try await conn.sendBinary([1, 0, 0, 0, 0, 0, 0, 0, 0])
                let pushed = try #require(try await conn.readFrame())
                let event = try JSONValue.parse(bytes: pushed.payload)
                #expect(event["type"]?.stringValue == "hid-led-status")
                #expect(event["data"]?.stringValue?.contains(#""capsLock":true,"scrollLock":false,"known":true"#) == true)
            }
            let leds = try await sim.get("/api/hid/leds", token: token)
            #expect(leds.json?["data"]?["capsLock"] == true)
            #expect(leds.json?["data"]?["updatedAt"]?.stringValue?.hasSuffix("Z") == true)
        }
    }

    @Test func binaryReportsDriveTheVirtualHost() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                #expect(try await conn.upgrade(cookie: token).status == 101)
                try await conn.sendBinary([0])
                try await conn.sendBinary([1, 0x02, 0, 0x04, 0, 0, 0, 0, 0])  // Shift + a
                try await conn.sendBinary([1, 0x02, 0, 0x04, 0x05, 0, 0, 0])  // wrong length: ignored
                try await conn.sendBinary([9, 1, 2])  // unknown type: ignored
                try await eventually("A typed") { sim.consoleText.hasSuffix("login: A") }
                #expect(sim.input.pressedKeys == [0x04])
                #expect(sim.input.modifiers == 0x02)
                try await conn.sendBinary([1, 0, 0, 0x05, 0x04, 0, 0, 0, 0])  // b pressed while a is held
                try await conn.sendBinary([1, 0, 0, 0, 0, 0, 0, 0, 0])
                try await conn.sendBinary([2, 0x01, 0x00, 0x40, 0x00, 0x40, 0x00])  // absolute, left down at centre
                try await conn.sendBinary([2, 0x00, 0x05, 0xFD, 0xFF])  // relative +5,-3, wheel -1
                try await eventually("mouse reports") { sim.reports.count == 5 }
                let input = sim.input
                #expect(input.absolute?.x == 16384 && input.absolute?.y == 16384)
                #expect(input.relativeTotal == (5, -3))
                #expect(input.wheelTotal == -1)
                #expect(input.buttons == 0)
                #expect(sim.consoleText.hasSuffix("login: Ab"))
                #expect(sim.reports.map(\.kind) == [.keyboard, .keyboard, .keyboard, .absoluteMouse, .relativeMouse])
                #expect(sim.reports.allSatisfy { $0.source == .webSocket && $0.delivered })
                // Hold a key, then drop the socket: the server releases it (2.4.1+).
                try await conn.sendBinary([1, 0x01, 0, 0x06, 0, 0, 0, 0, 0])
                try await eventually("ctrl+c held") { sim.input.pressedKeys == [0x06] }
            }
            try await eventually("release on close") { sim.input.pressedKeys.isEmpty && sim.input.modifiers == 0 }
            #expect(sim.reports.last?.source == .release)
        }
    }

    @Test func legacyJSONArrays() async throws {
        try await withSimulator(.fast(.legacy)) { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                #expect(try await conn.upgrade(cookie: token).status == 101)
                try await conn.sendText("[0]")
                try await conn.sendText("[]")
                try await conn.sendText("[1]")
                try await conn.sendText("[2,1]")
                try await conn.sendBinary([1, 0, 0, 4, 0, 0, 0, 0, 0])  // binary protocol: ignored
                try await conn.sendText("[1,4,0,1,0,0]")  // shift + a with 2.0.x flags
                try await conn.sendText("[1,0,0,0,0,0]")
                try await conn.sendText("[2,2,0,16384,8192]")
                try await conn.sendText("[2,1,2,0,0]")
                try await conn.sendText("[2,0,0,0,0]")
                try await conn.sendText("[2,4,0,0,5]")
                try await eventually("legacy reports") { sim.reports.count == 6 }
                #expect(sim.reports.map(\.bytes) == [
                    [2, 0, 4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0x40, 0, 0x20, 0],
                    [2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0xFF],
                ])
                #expect(sim.consoleText.hasSuffix("login: A"))
                #expect(sim.input.absolute?.y == 8192)
            }
            // Legacy never sends events and has no deadline; a held key stays held (≤2.4.0).
        }
    }

    @Test func heartbeatDeadlineDropsTheConnection() async throws {
        var config = SimulatorConfiguration.fast()
        config.heartbeatDeadline = .milliseconds(1500)
        try await withSimulator(config) { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                #expect(try await conn.upgrade(cookie: token).status == 101)
                _ = try await conn.readFrame()
                _ = try await conn.readFrame()
                // Heartbeats keep it open past the deadline.
                for _ in 0..<7 {
                    try await Task.sleep(for: .milliseconds(300))
                    try await conn.sendBinary([0])
                }
                #expect(await sim.state().webSocketConnections == 1)
                // Ping control frames do not renew the deadline; no close frame is sent.
                let clock = ContinuousClock()
                let start = clock.now
                try await conn.sendFrame(opcode: 9, [1, 2])
                let pong = try #require(try await conn.readFrame())
                #expect(pong.opcode == 10 && pong.payload == [1, 2])
                let rest = try await conn.readToEnd()
                #expect(rest.isEmpty)
                #expect(clock.now - start >= .milliseconds(1200))
            }
        }
    }

    @Test func revocationClosesWith4401() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                #expect(try await conn.upgrade(cookie: token).status == 101)
                _ = try await conn.readFrame()
                _ = try await conn.readFrame()
                sim.revokeSessions(of: "admin")
                let close = try #require(try await conn.readFrame())
                #expect(close.opcode == 8)
                #expect(Array(close.payload.prefix(2)) == [0x11, 0x31])
                #expect(String(decoding: close.payload.dropFirst(2), as: UTF8.self) == "session expired or revoked")
            }
        }
    }

    @Test func dropFaults() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            try await withConnection(sim.port) { conn in
                #expect(try await conn.upgrade(cookie: token).status == 101)
                _ = try await conn.readFrame()
                _ = try await conn.readFrame()
                sim.inject(.dropWebSocketsAfter(reports: 2))
                try await conn.sendBinary([1, 0, 0, 4, 0, 0, 0, 0, 0])
                try await conn.sendBinary([1, 0, 0, 0, 0, 0, 0, 0, 0])
                #expect(try await conn.readToEnd().isEmpty)
            }
            try await withConnection(sim.port) { conn in
                #expect(try await conn.upgrade(cookie: token).status == 101)
                _ = try await conn.readFrame()
                _ = try await conn.readFrame()
                sim.inject(.dropWebSockets)
                #expect(try await conn.readToEnd().isEmpty)
            }
        }
    }
}
