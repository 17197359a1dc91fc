import NanoKVM
import NanoKVMSimulator
import Testing

/// Waits until `condition` holds (polling), up to `seconds`.
func eventually(_ seconds: Double = 3, _ condition: () async -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + .milliseconds(Int(seconds * 1000))
    while clock.now < end {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

func webSocketReports(_ simulator: NanoKVMSimulator) -> [SimulatorReport] {
    simulator.reports.filter { $0.source == .webSocket }
}

@Suite("WebSocket HID session", .timeLimit(.minutes(1)))
struct WebSocketTests {
    @Test("Keyboard reports reach the host in the generation's encoding", arguments: bothGenerations)
    func keyboard(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let session = try await client.openHIDSession()
            #expect(session.generation == client.generation)
            // The upgrade carried the cookie and no Origin header (§8.1).
            let upgrade = try #require(simulator.requestLog.last { $0.path == "/api/ws" })
            #expect(upgrade.status == 101 && upgrade.hadCookie && upgrade.origin == nil)
            #expect(await simulator.state().lastWebSocketOrigin == nil)
            // Shift + a, release: the host types "A".
            let first = try await session.send(.keyboard(KeyboardReport(modifiers: 0x02, keys: [0x04])))
            let second = try await session.send(.keyboard(.released))
            #expect(first.sequence == 1 && second.sequence == 2)
            #expect(first.writtenAt <= second.writtenAt)
            #expect(await eventually { webSocketReports(simulator).count >= 2 })
            let reports = webSocketReports(simulator)
            #expect(reports.map(\.kind) == [.keyboard, .keyboard])
            #expect(reports.first?.bytes == [0x02, 0, 0x04, 0, 0, 0, 0, 0])
            #expect(reports.last?.bytes == [0, 0, 0, 0, 0, 0, 0, 0])
            #expect(simulator.transcript.hasSuffix("A"))
            // The host received each report after it was written by us.
            if let received = reports.first {
                #expect(Double(received.monotonicNanoseconds) / 1e9 >= first.writtenAt - 0.5)
            }
            await session.close()
            #expect(session.closeInfo?.closedByClient == true)
            await expectError(.transport) { try await session.send(.heartbeat) }
        }
    }

    @Test("Mouse reports: absolute and relative", arguments: bothGenerations)
    func mouse(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let session = try await client.openHIDSession()
            try await session.send(.absoluteMouse(AbsoluteMouseReport(fractionX: 0.5, fractionY: 0.25)))
            try await session.send(.relativeMouse(RelativeMouseReport(dx: 10, dy: -5)))
            #expect(await eventually { webSocketReports(simulator).count >= 2 })
            let reports = webSocketReports(simulator)
            let absolute = reports.first { $0.kind == .absoluteMouse }
            #expect(absolute?.bytes == [0, 0x00, 0x40, 0x00, 0x20, 0])
            let relative = reports.first { $0.kind == .relativeMouse }
            #expect(relative?.bytes == [0, 10, 0xFB, 0])
            await session.close()
        }
    }

    @Test("Concurrent senders get distinct sequence numbers in socket order")
    func concurrentSends() async throws {
        try await withDevice(.current) { simulator, client in
            let session = try await client.openHIDSession()
            let receipts = try await withThrowingTaskGroup(of: HIDSendReceipt.self) { group in
                for index in 0..<100 {
                    group.addTask { try await session.send(.relativeMouse(RelativeMouseReport(dx: Int8(index % 100)))) }
                }
                var all: [HIDSendReceipt] = []
                for try await receipt in group { all.append(receipt) }
                return all
            }
            #expect(Set(receipts.map(\.sequence)) == Set(1...100))
            #expect(await eventually { webSocketReports(simulator).count >= 100 })
            await session.close()
        }
    }

    @Test("Server events arrive on the current generation")
    func events() async throws {
        try await withDevice(.current) { _, client in
            let session = try await client.openHIDSession()
            var sawLEDs = false
            for await event in session.events {
                if case .keyboardLEDs = event { sawLEDs = true; break }
                if case .closed = event { break }
            }
            #expect(sawLEDs)
            await session.close()
        }
    }

    @Test("Heartbeats keep the session alive past the device's read deadline")
    func heartbeat() async throws {
        try await withDevice(.current, configure: { $0.heartbeatDeadline = .milliseconds(1000) }) { _, client in
            let kept = try await client.openHIDSession(HIDSessionOptions(heartbeatInterval: .milliseconds(100)))
            let silent = try await client.openHIDSession(HIDSessionOptions(heartbeatInterval: .zero))
            try await Task.sleep(for: .milliseconds(2500))
            #expect(kept.isOpen)
            #expect(!silent.isOpen)
            // Dropped without a close frame: reported as a transport failure.
            #expect(silent.closeInfo?.code == nil)
            #expect(silent.closeInfo?.error?.kind == .transport)
            await kept.close()
        }
    }

    @Test("A revoked session closes with 4401 and says to log in again")
    func revoked() async throws {
        try await withDevice(.current) { simulator, client in
            let session = try await client.openHIDSession()
            simulator.expireTokens()
            var close: HIDSessionClose?
            for await event in session.events {
                if case .closed(let info) = event { close = info }
            }
            #expect(close?.code == 4401)
            #expect(close?.reloginRequired == true)
            #expect(close?.closedByClient == false)
            // Opening again logs in once more and works.
            let again = try await client.openHIDSession()
            #expect(await client.loginCount() == 2)
            try await again.send(.heartbeat)
            await again.close()
        }
    }

    @Test("Expired token on the upgrade: one re-login, then the session opens", arguments: bothGenerations)
    func reloginOnUpgrade(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            simulator.expireTokens()
            let session = try await client.openHIDSession()
            #expect(await client.loginCount() == 2)
            try await session.send(.keyboard(.released))
            await session.close()
        }
    }

    @Test("Legacy JSON messages go out verbatim; binary-only misuse is refused")
    func legacyRaw() async throws {
        try await withDevice(.legacy) { simulator, client in
            let session = try await client.openHIDSession()
            try await session.send(.legacy(.keyboard(usage: 0x05, ctrl: 0, shift: 0, alt: 0, meta: 0)))
            try await session.send(.legacy(.keyboard(usage: 0, ctrl: 0, shift: 0, alt: 0, meta: 0)))
            #expect(await eventually { webSocketReports(simulator).count >= 2 })
            #expect(webSocketReports(simulator).first?.bytes == [0, 0, 0x05, 0, 0, 0, 0, 0])
            #expect(simulator.transcript.hasSuffix("b"))
            await session.close()
        }
        try await withDevice(.current) { _, client in
            let session = try await client.openHIDSession()
            await expectError(.usage) { try await session.send(.legacy(.heartbeat)) }
            await session.close()
        }
    }

    @Test("A dropped connection ends the events and later sends fail", arguments: bothGenerations)
    func dropped(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let session = try await client.openHIDSession()
            simulator.inject(.dropWebSockets)
            var close: HIDSessionClose?
            for await event in session.events {
                if case .closed(let info) = event { close = info }
            }
            #expect(close != nil && close?.closedByClient == false)
            await expectError(.transport) { try await session.send(.heartbeat) }
        }
    }

    @Test("Closing the client closes its sessions")
    func clientClose() async throws {
        try await withDevice(.current) { simulator, client in
            let session = try await client.openHIDSession()
            #expect(await eventually { await simulator.state().webSocketConnections == 1 })
            await client.close()
            #expect(await eventually { await simulator.state().webSocketConnections == 0 })
            #expect(await eventually { !session.isOpen })
        }
    }
}
