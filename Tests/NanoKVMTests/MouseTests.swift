import NanoKVM
import NanoKVMSimulator
import Testing

private typealias Report = (kind: SimulatorReport.Kind, bytes: [UInt8])

private func logged(_ simulator: NanoKVMSimulator) -> [String] {
    simulator.reports.filter { $0.source == .webSocket }.map { describe(($0.kind, $0.bytes)) }
}

private func describe(_ report: Report) -> String {
    let prefix: String
    switch report.kind {
    case .keyboard: prefix = "K"
    case .relativeMouse: prefix = "R"
    case .absoluteMouse: prefix = "A"
    }
    return prefix + report.bytes.map { byte in
        let hex = String(byte, radix: 16, uppercase: true)
        return " " + (hex.count == 1 ? "0" + hex : hex)
    }.joined()
}

private func expectReports(
    _ simulator: NanoKVMSimulator, _ expected: [Report], sourceLocation: SourceLocation = #_sourceLocation
) async {
    let wanted = expected.map(describe)
    _ = await eventually { logged(simulator).count >= wanted.count }
    #expect(logged(simulator) == wanted, sourceLocation: sourceLocation)
}

@Suite("Mouse: absolute, pixels, relative, buttons, drag, wheel", .timeLimit(.minutes(1)))
struct MouseTests {
    @Test("Fractions scale like the web UI: floor(32767·f) + 1, at most 32767")
    func scaling() throws {
        #expect(try AbsolutePosition.deviceUnits(fraction: 0) == 1)
        #expect(try AbsolutePosition.deviceUnits(fraction: 0.5) == 16384)
        #expect(try AbsolutePosition.deviceUnits(fraction: 0.25) == 8192)
        #expect(try AbsolutePosition.deviceUnits(fraction: 1) == 32767)
        #expect(throws: NanoKVMError.self) { try AbsolutePosition.deviceUnits(fraction: 1.01) }
        #expect(throws: NanoKVMError.self) { try AbsolutePosition.deviceUnits(fraction: -0.1) }
        #expect(throws: NanoKVMError.self) { try AbsolutePosition.deviceUnits(fraction: .nan) }
        #expect(throws: NanoKVMError.self) { try MouseButton(name: "sideways") }
        #expect(try MouseButton(name: "Forward") == .forward)
    }

    @Test("Absolute and relative moves, byte for byte", arguments: bothGenerations)
    func moves(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            await clearReportsWhenQuiet(simulator)
            try await hid.move(x: 0.5, y: 0.25)
            try await hid.move(x: 0, y: 0)
            try await hid.move(x: 1, y: 1)
            // 300 units right, 20 up: three reports of at most 127, summing exactly.
            try await hid.moveBy(dx: 300, dy: -20)
            await expectReports(simulator, [
                (.absoluteMouse, [0, 0x00, 0x40, 0x00, 0x20, 0]), (.absoluteMouse, [0, 0x01, 0x00, 0x01, 0x00, 0]),
                (.absoluteMouse, [0, 0xFF, 0x7F, 0xFF, 0x7F, 0]),
                (.relativeMouse, [0, 100, 0xFA, 0]), (.relativeMouse, [0, 100, 0xF9, 0]), (.relativeMouse, [0, 100, 0xF9, 0]),
            ])
            #expect(simulator.input.relativeTotal == (300, -20))
            await expectError(.usage) { try await hid.move(x: 1.5, y: 0) }
            await hid.close()
        }
    }

    @Test("Pixels of the screen size land on that pixel of the host", arguments: bothGenerations)
    func pixels(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            for (x, y) in [(640, 360), (0, 0), (1279, 719), (1, 718), (333, 222)] {
                try await hid.movePixels(x: Double(x), y: Double(y), width: 1280, height: 720)
                #expect(await eventually { simulator.input.pointer == (x, y) }, "\(x),\(y) → \(simulator.input.pointer)")
            }
            await expectError(.usage) { try await hid.movePixels(x: 1280, y: 0, width: 1280, height: 720) }
            await expectError(.usage) { try await hid.movePixels(x: 0, y: 0, width: 0, height: 0) }
            await hid.close()
        }
    }

    @Test("Clicks: move first when x, y are given; buttons; double click", arguments: bothGenerations)
    func clicks(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            await clearReportsWhenQuiet(simulator)
            try await hid.click(.right, x: 0.5, y: 0.5)
            let center: [UInt8] = [0x00, 0x40, 0x00, 0x40]
            if generation == .current {
                await expectReports(simulator, [
                    (.absoluteMouse, [0] + center + [0]), (.absoluteMouse, [2] + center + [0]), (.absoluteMouse, [0] + center + [0]),
                ])
            } else {
                // JSON protocol: buttons live on the relative device.
                await expectReports(simulator, [
                    (.absoluteMouse, [0] + center + [0]), (.relativeMouse, [2, 0, 0, 0]), (.relativeMouse, [0, 0, 0, 0]),
                ])
            }
            await clearReportsWhenQuiet(simulator)
            try await hid.moveBy(dx: 1, dy: 0)
            try await hid.doubleClick()
            await expectReports(simulator, [
                (.relativeMouse, [0, 1, 0, 0]), (.relativeMouse, [1, 0, 0, 0]), (.relativeMouse, [0, 0, 0, 0]),
                (.relativeMouse, [1, 0, 0, 0]), (.relativeMouse, [0, 0, 0, 0]),
            ])
            try await hid.mouseDown(.middle)
            #expect(await eventually { simulator.input.buttons == 0x04 })
            try await hid.mouseUp(.middle)
            #expect(await eventually { simulator.input.buttons == 0 })
            if generation == .current {
                try await hid.move(x: 0.5, y: 0.5)
                await clearReportsWhenQuiet(simulator)
                try await hid.click(.back)
                await expectReports(simulator, [(.absoluteMouse, [8] + center + [0]), (.absoluteMouse, [0] + center + [0])])
            } else {
                await expectError(.unsupported) { try await hid.click(.forward) }
            }
            await expectError(.usage) { try await hid.click(.left, x: 0.5, y: nil) }
            await hid.close()
        }
    }

    @Test("Drag: press at the start, move in steps, release at the end", arguments: bothGenerations)
    func drag(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            await clearReportsWhenQuiet(simulator)
            try await hid.drag(fromX: 0.25, fromY: 0.25, toX: 0.75, toY: 0.5, options: DragOptions(steps: 2, stepInterval: 0.01))
            let start: [UInt8] = [0x00, 0x20, 0x00, 0x20]  // 8192
            let middle: [UInt8] = [0x00, 0x40, 0x00, 0x30]  // 16384, floor(32767·0.375)+1 = 12288
            let end: [UInt8] = [0x00, 0x60, 0x00, 0x40]  // floor(32767·0.75)+1 = 24576, 16384
            if generation == .current {
                await expectReports(simulator, [
                    (.absoluteMouse, [0] + start + [0]), (.absoluteMouse, [1] + start + [0]),
                    (.absoluteMouse, [1] + middle + [0]), (.absoluteMouse, [1] + end + [0]), (.absoluteMouse, [0] + end + [0]),
                ])
            } else {
                await expectReports(simulator, [
                    (.absoluteMouse, [0] + start + [0]), (.relativeMouse, [1, 0, 0, 0]),
                    (.absoluteMouse, [0] + middle + [0]), (.absoluteMouse, [0] + end + [0]), (.relativeMouse, [0, 0, 0, 0]),
                ])
            }
            #expect(simulator.input.buttons == 0)
            #expect(simulator.input.absolute?.x == 24576 && simulator.input.absolute?.y == 16384)
            await hid.close()
        }
    }

    @Test("Wheel: positive dy scrolls down (report −1 per notch); dx is Shift + wheel", arguments: bothGenerations)
    func wheel(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let hid = client.makeHIDController()
            await clearReportsWhenQuiet(simulator)
            try await hid.scroll(dy: 3)
            try await hid.scroll(dy: -2)
            await expectReports(simulator, [
                (.relativeMouse, [0, 0, 0, 0xFF]), (.relativeMouse, [0, 0, 0, 0xFF]), (.relativeMouse, [0, 0, 0, 0xFF]),
                (.relativeMouse, [0, 0, 0, 0x01]), (.relativeMouse, [0, 0, 0, 0x01]),
            ])
            #expect(simulator.input.wheelTotal == -1)
            await clearReportsWhenQuiet(simulator)
            try await hid.scroll(dy: 0, dx: 1)
            let shiftDown: [UInt8] = generation == .current ? [2, 0, 0, 0, 0, 0, 0, 0] : [2, 0, 0xE1, 0, 0, 0, 0, 0]
            await expectReports(simulator, [(.keyboard, shiftDown), (.relativeMouse, [0, 0, 0, 0xFF]), (.keyboard, [0, 0, 0, 0, 0, 0, 0, 0])])
            if generation == .current {
                // After an absolute move the wheel rides on the absolute report at that position.
                try await hid.move(x: 0.5, y: 0.5)
                await clearReportsWhenQuiet(simulator)
                try await hid.scroll(dy: 1)
                await expectReports(simulator, [(.absoluteMouse, [0, 0x00, 0x40, 0x00, 0x40, 0xFF])])
            }
            await hid.close()
        }
    }

    @Test("release_all lets go of buttons held on either pointer device")
    func releaseButtons() async throws {
        try await withDevice(.current) { simulator, client in
            let hid = client.makeHIDController()
            try await hid.move(x: 0.5, y: 0.5)
            try await hid.mouseDown(.left)
            try await hid.moveBy(dx: 5, dy: 5)
            #expect(await eventually { simulator.input.buttons == 1 })
            await clearReportsWhenQuiet(simulator)
            try await hid.releaseAll()
            await expectReports(simulator, [
                (.keyboard, [0, 0, 0, 0, 0, 0, 0, 0]), (.relativeMouse, [0, 0, 0, 0]), (.absoluteMouse, [0, 0x00, 0x40, 0x00, 0x40, 0]),
            ])
            #expect(hid.state.isReleased)
            await hid.close()
        }
    }
}
