import Foundation
import NanoKVM
import Testing

@testable import NanoKVMSimulator

/// Keys and mouse reports over one binary WebSocket (current generation), as the web UI sends them.
private struct Wire {
    let conn: TestConnection

    func key(_ usage: UInt8, modifiers: UInt8 = 0) async throws {
        try await conn.sendBinary([1, modifiers, 0, usage, 0, 0, 0, 0, 0])
        try await conn.sendBinary([1, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    /// An absolute-mouse report at frame pixel (`x`, `y`) of a `width`×`height` screen.
    func mouse(x: Int, y: Int, buttons: UInt8, width: Int = 1280, height: Int = 720) async throws {
        let ax = (x * 32767 + (width - 1) / 2) / (width - 1)
        let ay = (y * 32767 + (height - 1) / 2) / (height - 1)
        try await conn.sendBinary([2, buttons, UInt8(ax & 0xFF), UInt8(ax >> 8), UInt8(ay & 0xFF), UInt8(ay >> 8), 0])
    }

    func click(x: Int, y: Int) async throws {
        try await mouse(x: x, y: y, buttons: 1)
        try await mouse(x: x, y: y, buttons: 0)
    }
}

extension NanoKVMSimulator {
    /// `GET /__sim/screen` over HTTP: scene, machine state, lines.
    fileprivate func inspectScreen() async throws -> JSONValue {
        let response = try await withConnection(port) { try await $0.request("GET", "/__sim/screen") }
        guard response.status == 200, let json = response.json else { throw TestFailure("GET /__sim/screen: \(response.status)") }
        return json
    }

    fileprivate func scene() async throws -> String { try await inspectScreen()["scene"]?.stringValue ?? "?" }

    fileprivate func screenLines() async throws -> [String] {
        try await inspectScreen()["screen"]?["lines"]?.arrayValue?.compactMap { $0["text"]?.stringValue } ?? []
    }

    fileprivate func waitScene(_ name: String, timeout: Double = 5) async throws {
        try await eventually("scene \(name)", timeout: timeout) { (try? await self.scene()) == name }
    }

    fileprivate func paste(_ text: String, token: String) async throws {
        let body = try JSONValue.object([("content", .string(text))]).serialized()
        let response = try await post("/api/hid/paste", body, token: token)
        guard response.status == 200 else { throw TestFailure("paste: \(response.text)") }
    }
}

private func machineConfiguration(_ scene: SimulatorScene, timeScale: Double = 0) -> SimulatorConfiguration {
    var configuration = SimulatorConfiguration.fast()
    configuration.scene = scene
    configuration.timeScale = timeScale
    configuration.clock = Date(timeIntervalSince1970: 1_796_304_411)  // Thu 2026-12-03 13:26:51 UTC
    return configuration
}

private func withWire<T>(_ sim: NanoKVMSimulator, _ body: (Wire) async throws -> T) async throws -> T {
    let token = try await sim.login()
    return try await withConnection(sim.port, timeout: 30) { conn in
        let upgraded = try await conn.upgrade(cookie: token)
        guard upgraded.status == 101 else { throw TestFailure("WebSocket upgrade: \(upgraded.status)") }
        return try await body(Wire(conn: conn))
    }
}

private enum Key {
    static let enter: UInt8 = 0x28, escape: UInt8 = 0x29, f10: UInt8 = 0x43, f12: UInt8 = 0x45, delete: UInt8 = 0x4C
    static let right: UInt8 = 0x4F, left: UInt8 = 0x50, down: UInt8 = 0x51, up: UInt8 = 0x52, keypadPlus: UInt8 = 0x57
}

@Suite(.timeLimit(.minutes(1))) struct MachineTests {
    @Test func consoleFontsParseAndFallBack() throws {
        let vga = try #require(PSFFont.named("Lat15-VGA16"), "console-setup-linux is installed (scripts/setup)")
        #expect(vga.width == 8 && vga.height == 16)
        let a = vga.glyph(for: "A")
        #expect((0..<vga.height).contains { vga.rowBits(a, row: $0) != 0 })
        #expect(vga.glyph(for: "\u{2500}") != vga.glyph(for: "?"), "box drawing is mapped through the unicode table")
        let big = try #require(PSFFont.named("Lat15-TerminusBold32x16"))
        #expect(big.width == 16 && big.height == 32, "PSF2")
        #expect(PSFFont.named("No-Such-Font") == nil)
        #expect(PSFFont.builtin.width == 8 && PSFFont.builtin.glyph(for: "A") == 65)
        #expect(throws: PSFFont.LoadError.self) { try PSFFont.parse([0x1F, 0x8B, 0, 0], name: "broken") }
    }

    @Test func rendererRedrawsOnlyChangedCells() {
        let geometry = TextGeometry.fixed(columns: 80, rows: 25, fonts: [PSFFont.builtin], width: 1280, height: 720)
        #expect(geometry.scale == 1 && geometry.originX == 320 && geometry.originY == 160, "integer scale, centred")
        var screen = TextScreen(geometry: geometry)
        screen.put("Hello", row: 2, column: 3, fg: VGAColor.grey, bg: VGAColor.black)
        var renderer = TextScreenRenderer()
        renderer.render(screen, width: 1280, height: 720)
        #expect(renderer.lastRedrawnCells == 80 * 25)
        renderer.render(screen, width: 1280, height: 720)
        #expect(renderer.lastRedrawnCells == 0)
        screen.put("J", row: 2, column: 3, fg: VGAColor.grey, bg: VGAColor.black)
        renderer.render(screen, width: 1280, height: 720)
        #expect(renderer.lastRedrawnCells == 1)
        // Crisp glyphs: every pixel is the foreground or the background colour.
        let values = Set(renderer.pixels)
        #expect(values.isSubset(of: [0x00, 0xAA]))
        #expect(screen.text.lines.first?.text == "   Jello")
        #expect(screen.text.lines.first.map { [$0.x, $0.y, $0.width, $0.height] } == [320 + 3 * 8, 160 + 2 * 16, 5 * 8, 16])
    }

    @Test func sameInputsAtSameTimesGiveSameScreens() {
        let start = ContinuousClock.now
        let identity = Machine.Identity(hostname: "kvmtarget", user: "root", password: "root", clock: Date(timeIntervalSince1970: 0))
        func run() -> [TextScreen] {
            var machine = Machine(width: 1280, height: 720, timeScale: 1, identity: identity, start: .post, poweredOn: true, now: start)
            var screens: [TextScreen] = []
            for step in 0..<12 {
                let now = start + .milliseconds(step * 500)
                if step == 3 { machine.key(Usage.delete, modifiers: 0, text: "", now: now) }
                if step == 5 { machine.key(Usage.right, modifiers: 0, text: "", now: now) }
                machine.advance(now: now)
                screens.append(machine.screen)
            }
            return screens
        }
        let first = run()
        #expect(first == run())
        #expect(first[0] != first[1], "the setup window opens during POST")
    }

    @Test func keyBeforeTheWindowIsIgnoredThenDeleteEntersSetup() async throws {
        try await withSimulator(machineConfiguration(.machine, timeScale: 3)) { sim in
            try await withWire(sim) { wire in
                // POST at scale 3: the DEL window opens after 1.8 s and closes at 9 s.
                #expect(sim.machineState()?.setupWindowOpen == false)
                try await wire.key(Key.delete)
                try await eventually("key delivered") { sim.reports.count >= 2 }
                #expect(try await sim.scene() == "post", "too early: ignored")
                try await eventually("window open", timeout: 8) { sim.machineState()?.setupWindowOpen == true }
                #expect(try await sim.screenLines().contains { $0.contains("Press DEL to enter Setup, F12 for Boot Menu") })
                try await wire.key(Key.delete)
                try await sim.waitScene("bios")
                let lines = try await sim.screenLines()
                #expect(lines.contains { $0.contains("Main") && $0.contains("Advanced") && $0.contains("Save & Exit") })
                #expect(lines.first?.contains("12/03/2026 13:26:51") == true, "the header clock (fixed for the test)")
            }
        }
    }

    @Test func bootOrderSavedInSetupPersistsAcrossAPowerCycle() async throws {
        try await withSimulator(machineConfiguration(.bios)) { sim in
            let token = try await sim.login()
            let mount = try await sim.post(
                "/api/storage/image/mount", #"{"file":"/data/debian-12.5.0-amd64-netinst.iso","cdrom":true}"#, token: token)
            #expect(mount.status == 200)
            #expect(sim.machineState()?.bootOrder == ["Hard Disk", "NanoKVM Virtual CD-ROM", "Network"])
            try await withWire(sim) { wire in
                try await wire.key(Key.right)
                try await wire.key(Key.right)
                try await eventually("Boot tab") { sim.machineState()?.tab == "Boot" }
                try await wire.key(Key.down)
                try await eventually("second option") { sim.machineState()?.selection == "Boot Option #2" }
                try await wire.key(Key.keypadPlus)
                try await eventually("moved up") { sim.machineState()?.pendingBootOrder.first == "NanoKVM Virtual CD-ROM" }
                #expect(sim.machineState()?.bootOrder.first == "Hard Disk", "not saved yet")
                let lines = try await sim.screenLines()
                #expect(lines.contains { $0.contains("Boot Option #1") && $0.contains("[NanoKVM Virtual CD-ROM]") })
                try await wire.key(Key.f10)
                try await eventually("confirm") { sim.machineState()?.selection == "Yes" }
                try await wire.key(Key.enter)
                try await eventually("saved") { sim.machineState()?.bootOrder.first == "NanoKVM Virtual CD-ROM" }
            }
            // A power cycle (the ATX button, both presses) keeps the order; the boot takes the CD-ROM.
            _ = try await sim.post("/api/vm/gpio", #"{"type":"power","duration":100}"#, token: token)
            try await eventually("off") { !sim.device.host.poweredOn }
            #expect(try await sim.scene() == "off")
            _ = try await sim.post("/api/vm/gpio", #"{"type":"power","duration":100}"#, token: token)
            try await eventually("on") { sim.device.host.poweredOn }
            #expect(sim.machineState()?.bootOrder == ["NanoKVM Virtual CD-ROM", "Hard Disk", "Network"])
            try await sim.waitScene("installer")
        }
    }

    @Test func escapeLeavesSetupWithoutSaving() async throws {
        try await withSimulator(machineConfiguration(.bios, timeScale: 1)) { sim in
            try await withWire(sim) { wire in
                try await wire.key(Key.right)
                try await wire.key(Key.right)
                try await wire.key(Key.down)
                try await wire.key(Key.keypadPlus)
                try await eventually("moved") { sim.machineState()?.pendingBootOrder.first == "Network" }
                try await wire.key(Key.escape)
                try await sim.waitScene("grub")
                #expect(sim.machineState()?.bootOrder == ["Hard Disk", "Network"], "unchanged; no CD-ROM without an image")
            }
        }
    }

    @Test func bootMenuInstallerAndItsMouseButtons() async throws {
        try await withSimulator(machineConfiguration(.bootmenu)) { sim in
            let token = try await sim.login()
            _ = try await sim.post(
                "/api/storage/image/mount", #"{"file":"/data/debian-12.5.0-amd64-netinst.iso","cdrom":true}"#, token: token)
            try await withWire(sim) { wire in
                try await eventually("listed") { ((try? await sim.screenLines()) ?? []).contains { $0.contains("NanoKVM Virtual CD-ROM") } }
                try await wire.key(Key.down)
                try await eventually("CD-ROM selected") { sim.machineState()?.selection == "NanoKVM Virtual CD-ROM" }
                try await wire.key(Key.enter)
                try await sim.waitScene("installer")
                #expect(try await sim.screenLines().contains { $0.contains("Graphical install") })
                #expect(sim.machineState()?.pointerShown == true)
                try await wire.key(Key.enter)
                try await sim.waitScene("installer-dialog")
                let buttons = try #require(sim.machineState()?.buttons)
                let yes = try #require(buttons.first { $0.label == "< Yes >" })
                #expect(buttons.contains { $0.label == "< No >" })
                // Just left of the button: a miss, the dialog stays.
                try await wire.click(x: yes.x - 6, y: yes.y + yes.height / 2)
                try await eventually("pointer there") { sim.input.pointer.x == yes.x - 6 }
                try await Task.sleep(for: .milliseconds(100))
                #expect(try await sim.scene() == "installer-dialog")
                // On the button: it is pressed.
                try await wire.click(x: yes.x + yes.width / 2, y: yes.y + yes.height / 2)
                try await eventually("installing") { (try? await sim.scene()).map { $0 == "installing" || $0 == "installed" } ?? false }
            }
        }
    }

    @Test func grubCountsDownAndArrowsStopIt() async throws {
        try await withSimulator(machineConfiguration(.grub, timeScale: 1)) { sim in
            let lines = try await sim.screenLines()
            #expect(lines.contains { $0.contains("GNU GRUB") })
            #expect(lines.contains { $0.contains("The highlighted entry will be executed automatically in 5s.") })
            try await withWire(sim) { wire in
                try await wire.key(Key.down)
                try await eventually("second entry") { sim.machineState()?.selection == "Advanced options for Debian GNU/Linux" }
                #expect(try await sim.screenLines().contains { $0.contains("executed automatically") } == false)
                try await wire.key(Key.enter)
                try await sim.waitScene("login")
                #expect(try await sim.screenLines().last == "kvmtarget login:")
            }
        }
    }

    @Test func wholeBootWithoutInputReachesTheLoginQuickly() async throws {
        try await withSimulator(machineConfiguration(.machine)) { sim in
            let start = ContinuousClock.now
            try await sim.waitScene("login", timeout: 5)
            #expect(ContinuousClock.now - start < .seconds(3))
        }
    }

    @Test func consoleLoginPasswordNotEchoedWrongPasswordRefused() async throws {
        var configuration = machineConfiguration(.login)
        configuration.targetPassword = "hunter2-pw"
        try await withSimulator(configuration) { sim in
            let token = try await sim.login()
            try await sim.paste("root\n", token: token)
            try await sim.waitScene("password")
            try await sim.paste("wrong-pw\n", token: token)
            try await eventually("refused") { ((try? await sim.screenLines()) ?? []).contains("Login incorrect") }
            #expect(try await sim.scene() == "login")
            try await sim.paste("root\nhunter2-pw\n", token: token)
            try await sim.waitScene("shell")
            let text = try await sim.screenLines().joined(separator: "\n")
            #expect(!text.contains("hunter2-pw") && !text.contains("wrong-pw"), "passwords are not echoed")
            try await sim.paste("uname -a\nhostname\ndate\n", token: token)
            try await eventually("ran") { ((try? await sim.screenLines()) ?? []).contains("Thu Dec  3 13:26:51 UTC 2026") }
            let lines = try await sim.screenLines()
            #expect(lines.contains { $0.hasPrefix("Linux kvmtarget 6.1.0") })
            #expect(lines.contains("kvmtarget"))
            #expect(lines.last == "root@kvmtarget:~#")
            let cursor = try #require(sim.machineState()?.cursor)
            #expect(cursor.column == "root@kvmtarget:~# ".count)
            // The cursor blinks: lit and dark within a second.
            var seen = Set<Bool>()
            try await eventually("blink", timeout: 3) {
                if let visible = sim.machineState()?.cursor?.visible { seen.insert(visible) }
                return seen.count == 2
            }
            try await sim.paste("poweroff\n", token: token)
            try await eventually("powered off") { !sim.device.host.poweredOn }
            #expect(await sim.state().powerLED == false, "the power LED follows")
            #expect(try await sim.scene() == "off")
        }
    }

    @Test func captureEncodesOnlyWhenTheScreenChanges() async throws {
        try await withSimulator(machineConfiguration(.bios)) { sim in
            let capture = sim.device.capture
            let first = try #require(capture.currentFrame())
            let again = try #require(capture.currentFrame())
            #expect(first.0.sequence == again.0.sequence, "an unchanged screen is not encoded again")
            sim.device.host.receive(.keyboard, [0, 0, Key.right, 0, 0, 0, 0, 0], source: .webSocket)
            let changed = try #require(capture.currentFrame())
            #expect(changed.0.sequence == first.0.sequence + 1)
            #expect(changed.0.jpeg.starts(with: [0xFF, 0xD8]))
        }
    }

    @Test func minimalConsoleStaysTheDefault() async throws {
        try await withSimulator(.fast()) { sim in
            #expect(sim.machineState() == nil)
            let scene = try await sim.scene()
            #expect(scene == "console")
            #expect(sim.screenText().lines.last?.text == "nanokvm-sim login:")
        }
    }
}
