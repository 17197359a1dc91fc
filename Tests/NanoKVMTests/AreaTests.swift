import NanoKVM
import NanoKVMSimulator
import Testing

@Suite("REST areas against the simulator", .timeLimit(.minutes(1)))
struct AreaTests {
    @Test("GPIO: presses and LEDs", arguments: bothGenerations)
    func gpio(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            var leds = try await client.gpio.leds()
            #expect(leds.power)
            try await client.gpio.press(.power, milliseconds: GPIOAPI.longPress)
            leds = try await client.gpio.leds()
            #expect(!leds.power)
            let poweredOff = await simulator.state()
            #expect(!poweredOff.poweredOn)
            try await client.gpio.press(.power)
            leds = try await client.gpio.leds()
            #expect(leds.power)
            try await client.gpio.press(.reset, milliseconds: 100)
            await expectError(.usage) { try await client.gpio.press(.power, milliseconds: 0) }
            await expectError(.usage) { try await client.gpio.press(.power, milliseconds: -5) }
        }
    }

    @Test("Screen settings", arguments: bothGenerations)
    func screen(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            try await client.screen.setFPS(15)
            try await client.screen.setQuality(60)
            try await client.screen.setResolution(720)
            let state = await simulator.state()
            #expect(state.fps == 15 && state.quality == 60 && state.resolution == 720)
            await expectError(.usage) { try await client.screen.setResolution(1234) }
            if generation == .current {
                try await client.screen.setGOP(50)
                try await client.screen.setEncoding(.h264)
            } else {
                await expectError(.unsupported) { try await client.screen.setEncoding(.h264) }
            }
        }
    }

    @Test("Virtual devices: state-aware set over a toggle", arguments: bothGenerations)
    func virtualDevices(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let start = try await client.virtualDevices.status()
            #expect(try await client.virtualDevices.set(.network, on: !start.network))
            #expect(try await !client.virtualDevices.set(.network, on: !start.network))
            let middle = try await client.virtualDevices.status()
            #expect(middle.network == !start.network && middle.disk == start.disk)
            let state = await simulator.state()
            #expect(state.virtualNetwork == !start.network)
            let toggled = try await client.virtualDevices.toggle(.disk)
            #expect(toggled == !start.disk)
            try await client.virtualDevices.set(.disk, on: start.disk)
            try await client.virtualDevices.set(.network, on: start.network)
            let end = try await client.virtualDevices.status()
            #expect(end.network == start.network && end.disk == start.disk)
        }
    }

    @Test("Scripts: upload, list, run, delete", arguments: bothGenerations)
    func scripts(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { _, client in
            let stored = try await client.scripts.upload(name: "hello.sh", text: "echo hello\n")
            #expect(stored == "hello.sh")
            #expect(try await client.scripts.list().contains("hello.sh"))
            let log = try await client.scripts.run(name: "hello.sh")
            #expect(log.contains("hello"))
            let background = try await client.scripts.run(name: "hello.sh", background: true)
            #expect(background.isEmpty)
            try await client.scripts.delete(name: "hello.sh")
            #expect(try await !client.scripts.list().contains("hello.sh"))
            await expectError(.usage) { try await client.scripts.upload(name: "evil.exe", text: "x") }
        }
    }

    @Test("System settings on the current generation")
    func systemCurrent() async throws {
        try await withDevice(.current) { simulator, client in
            let system = client.system
            try await system.setSSH(enabled: false)
            #expect(try await !system.sshEnabled())
            try await system.setSSH(enabled: true)
            #expect(try await system.sshEnabled())
            try await system.setMDNS(enabled: false)
            #expect(try await !system.mdnsEnabled())
            try await system.setMDNS(enabled: true)
            try await system.setOLEDSleep(seconds: 60)
            let oled = try await system.oled()
            #expect(oled.sleepSeconds == 60)
            try await system.setSwapSize(megabytes: 128)
            #expect(try await system.swapSize() == 128)
            try await system.setMemoryLimit(enabled: true, megabytes: 100)
            let limit = try await system.memoryLimit()
            #expect(limit.enabled && limit.megabytes == 100)
            try await system.setHDMI(enabled: false)
            var hdmi = try await system.hdmi()
            #expect(!hdmi.enabled)
            try await system.setHDMI(enabled: true)
            try await system.resetHDMI()
            try await system.setHDMIIdleTimeout(minutes: 30)
            hdmi = try await system.hdmi()
            #expect(hdmi.enabled && hdmi.idleTimeoutMinutes == 30 && hdmi.signal != nil)
            await expectError(.usage) { try await system.setHDMIIdleTimeout(minutes: 99999) }
            try await system.setMouseJiggler(enabled: true, mode: .absolute)
            let jiggler = try await system.mouseJiggler()
            #expect(jiggler.enabled && jiggler.mode == .absolute)
            try await system.setMouseJiggler(enabled: false)
            try await system.setMouseJiggler(enabled: false)  // state-aware: no −2
            #expect(try await !system.mouseJiggler().enabled)
            try await system.setHostname("kvm-test")
            #expect(try await system.hostname() == "kvm-test")
            let state = await simulator.state()
            #expect(state.hostname == "kvm-test")
            await expectError(.usage) { try await system.setHostname("bad name!") }
            #expect(try await system.webTitle() == "NanoKVM")
            try await system.setWebTitle("Lab KVM")
            #expect(try await system.webTitle() == "Lab KVM")
            try await system.setWebTitle("")
            try await system.setWebTitle("")  // already default: no −2
            #expect(try await system.webTitle() == "NanoKVM")
            try await system.saveAutostartScript(named: "boot.sh", content: "echo hi\n")
            #expect(try await system.autostartScripts().contains("boot.sh"))
            #expect(try await system.autostartScript(named: "boot.sh") == "echo hi\n")
            try await system.deleteAutostartScript(named: "boot.sh")
            #expect(try await !system.autostartScripts().contains("boot.sh"))
            await expectError(.usage) { try await system.autostartScript(named: "../etc/passwd") }
        }
    }

    @Test("System settings the legacy generation lacks raise unsupported")
    func systemLegacy() async throws {
        try await withDevice(.legacy) { _, client in
            await expectError(.unsupported) { try await client.system.sshEnabled() }
            await expectError(.unsupported) { try await client.system.swapSize() }
            await expectError(.unsupported) { try await client.system.hdmi() }
            await expectError(.unsupported) { try await client.system.reboot() }
            await expectError(.unsupported) { try await client.system.setTLS(enabled: true) }
            await expectError(.unsupported) { try await client.system.autostartScripts() }
            await expectError(.unsupported) { try await client.system.webTitle() }
        }
    }

    @Test("Reboot is taken as done even when the answer is lost")
    func reboot() async throws {
        try await withDevice(.current) { simulator, client in
            try await client.system.reboot()
            simulator.inject(.dropConnection(path: "/api/vm/system/reboot"))
            try await client.system.reboot()
        }
    }

    @Test("HID over HTTP: paste (chunked), mode, reset", arguments: bothGenerations)
    func hid(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let requests = try await client.hid.paste("Hello, World!\n")
            #expect(requests == 1)
            // Longer than one request may carry: split and typed in order.
            let long = String((0..<1100).map { index in Character(Unicode.Scalar(UInt8(97 + index % 26))) })
            let pieces = try await client.hid.paste(long)
            #expect(pieces == 2)
            // The transcript is everything the host received as text, unwrapped.
            let typed = simulator.transcript
            #expect(typed.contains("Hello, World!\n" + long))
            if generation == .current {
                #expect(try await client.hid.mode() == .normal)
                try await client.hid.setMode(.normal)
                try await client.hid.paste("Grüße", layout: .de)
                let leds = try await client.hid.keyboardLEDs()
                #expect(leds.updatedAt.isEmpty == !leds.known)
            } else {
                await expectError(.unsupported) { try await client.hid.mode() }
                await expectError(.unsupported) { try await client.hid.keyboardLEDs() }
            }
            // The split follows the firmware's limit: 1024 UTF-8 bytes before 2.5.0, 833 characters after.
            let ascii1700 = String(repeating: "x", count: 1700)
            #expect(try await client.hid.paste(ascii1700) == (generation == .legacy ? 2 : 3))
            let euros = String(repeating: "€", count: 400)  // 1200 bytes, 400 characters
            #expect(try await client.hid.paste(euros) == (generation == .legacy ? 2 : 1))
            try await client.hid.reset()
            #expect(try await client.hid.paste("") == 0)
        }
    }

    @Test("Shortcuts and leader key (current)")
    func shortcuts() async throws {
        try await withDevice(.current) { _, client in
            let before = try await client.hid.shortcuts()
            try await client.hid.addShortcut(keys: [ShortcutKey(code: "ControlLeft", label: "Ctrl"), ShortcutKey(code: "KeyC", label: "C")])
            let after = try await client.hid.shortcuts()
            #expect(after.count == before.count + 1)
            let added = try #require(after.first { $0.keys.map(\.code) == ["ControlLeft", "KeyC"] })
            try await client.hid.deleteShortcut(id: added.id)
            #expect(try await client.hid.shortcuts().count == before.count)
            await expectError(.usage) { try await client.hid.addShortcut(keys: []) }
            try await client.hid.setLeaderKey("ShiftRight")
            #expect(try await client.hid.leaderKey() == "ShiftRight")
            try await client.hid.setLeaderKey(nil)
            try await client.hid.setLeaderKey(nil)
            #expect(try await client.hid.leaderKey() == nil)
        }
    }

    @Test("Storage: list, mount as disk and CD-ROM, unmount, delete", arguments: bothGenerations)
    func storage(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let images = try await client.storage.images()
            #expect(images.contains("/data/memtest86.IMG"))
            #expect(try await client.storage.mounted() == nil)
            try await client.storage.mount("/data/memtest86.IMG")
            #expect(try await client.storage.mounted() == "/data/memtest86.IMG")
            if generation == .current {
                try await client.storage.mount("/data/debian-12.5.0-amd64-netinst.iso", cdrom: true)
                #expect(try await client.storage.cdromMode())
                // Back to a disk: the client unmounts first so the CD-ROM flag is cleared.
                try await client.storage.mount("/data/memtest86.IMG")
                #expect(try await !client.storage.cdromMode())
                let state = await simulator.state()
                #expect(state.mountedImage == "/data/memtest86.IMG" && !state.cdrom)
                try await client.storage.unmount()
                try await client.storage.delete("/data/memtest86.IMG")
                #expect(try await !client.storage.images().contains("/data/memtest86.IMG"))
                await expectError(.usage) { try await client.storage.delete("/etc/passwd") }
            } else {
                try await client.storage.unmount()
                await expectError(.unsupported) { try await client.storage.cdromMode() }
                await expectError(.unsupported) { try await client.storage.delete("/data/memtest86.IMG") }
            }
            #expect(try await client.storage.mounted() == nil)
        }
    }

    @Test("Frame detection: toggle on 2.0.x, explicit later", arguments: bothGenerations)
    func frameDetection(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            if generation == .current {
                await expectError(.unsupported) { try await client.stream.frameDetection() }
            }
            try await client.stream.setFrameDetection(true)
            #expect(try await client.stream.frameDetection())
            var state = await simulator.state()
            #expect(state.frameDetect)
            try await client.stream.setFrameDetection(true)  // no toggle back on 2.0.x
            state = await simulator.state()
            #expect(state.frameDetect)
            try await client.stream.setFrameDetection(false)
            #expect(try await !client.stream.frameDetection())
            try await client.stream.pauseFrameDetection(seconds: 1)
            if generation == .current {
                // 2.2.3+: detection is switched on when the pause ends.
                #expect(try await client.stream.frameDetection())
            }
        }
    }

    @Test("Network: Wake-on-LAN history, Wi-Fi, DNS", arguments: bothGenerations)
    func network(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { _, client in
            let network = client.network
            let empty = try await network.wakeTargets()
            #expect(empty.isEmpty)
            try await network.wake("aa-bb-cc-dd-ee-ff")
            var targets = try await network.wakeTargets()
            #expect(targets.map(\.mac) == ["AA:BB:CC:DD:EE:FF"])
            await expectError(.usage) { try await network.wake("not-a-mac") }
            if generation == .current {
                try await network.nameWakeTarget("AA:BB:CC:DD:EE:FF", name: "desktop")
                targets = try await network.wakeTargets()
                #expect(targets.first?.name == "desktop")
                let wifi = try await network.wifi()
                #expect(wifi.ssid.isEmpty == !wifi.connected)
                try await network.setDNS(.manual, servers: ["1.1.1.1", "9.9.9.9"])
                let dns = try await network.dns()
                #expect(dns.mode == .manual && dns.servers == ["1.1.1.1", "9.9.9.9"])
                await expectError(.usage) { try await network.setDNS(.manual, servers: []) }
            } else {
                await expectError(.unsupported) { try await network.wifi() }
                await expectError(.unsupported) { try await network.dns() }
            }
            try await network.deleteWakeTarget("AA:BB:CC:DD:EE:FF")
            targets = try await network.wakeTargets()
            #expect(targets.isEmpty)
        }
    }

    @Test("Tailscale status on both route families", arguments: bothGenerations)
    func tailscale(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { _, client in
            let status = try await client.tailscale.status()
            #expect([TailscaleState.notInstalled, .notRunning, .notLoggedIn, .stopped, .running].contains(status.state))
            if generation == .legacy {
                await expectError(.unsupported) { try await client.tailscale.start() }
            }
        }
    }

    @Test("Application and downloads", arguments: bothGenerations)
    func application(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { _, client in
            // The simulated device has no internet: the version check fails like the real one.
            do {
                let versions = try await client.application.versions()
                #expect(!versions.current.isEmpty)
            } catch let error as NanoKVMError {
                #expect(error.kind == .api && error.code == -1)
            }
            if generation == .current {
                try await client.application.setPreviewChannel(enabled: true)
                #expect(try await client.application.previewChannel())
                try await client.application.setPreviewChannel(enabled: false)
                let server = try await client.application.setUpdateServer(enabled: true, url: "https://updates.example.com")
                #expect(server.enabled)
                let read = try await client.application.updateServer()
                #expect(read.url == "https://updates.example.com")
                #expect(try await client.downloads.enabled())
                let status = try await client.downloads.status()
                #expect(status.state == .idle || status.state == .success || status.state == .failed)
                await expectError(.usage) { try await client.downloads.downloadImage(from: "ftp://x/y.iso") }
                await expectError(.usage) { try await client.downloads.uploadISO(named: "bad name.iso", contents: []) }
            } else {
                await expectError(.unsupported) { try await client.application.previewChannel() }
                await expectError(.unsupported) { try await client.downloads.status() }
            }
        }
    }

    @Test("Auth: account, password state, change password with automatic re-login", arguments: bothGenerations)
    func auth(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { _, client in
            if generation == .current {
                let account = try await client.auth.account()
                #expect(account.username == "admin" && account.role == .admin)
                #expect(try await !client.auth.isPasswordUpdated())
                await expectError(.usage) { try await client.auth.changePassword(current: "admin", new: "short") }
            } else {
                await expectError(.unsupported) { try await client.auth.account() }
            }
            try await client.auth.changePassword(current: "admin", new: "a-new-password")
            // The multi-user firmware revoked the session: the next call logs in with the new password.
            let leds = try await client.gpio.leds()
            #expect(leds.power)
            if generation == .current {
                #expect(await client.loginCount() == 2)
                #expect(try await client.auth.isPasswordUpdated())
            }
        }
    }

    @Test("Users (current): create, role, disable, reset password, delete; 403 for a user role")
    func users() async throws {
        try await withDevice(.current) { simulator, client in
            try await client.users.create(username: "operator", password: "operator-pass", role: .user)
            var list = try await client.users.list()
            #expect(list.contains { $0.username == "operator" && $0.role == .user && $0.enabled })
            #expect(list.contains { $0.username == "admin" && $0.systemAccount })
            let userClient = try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL, username: "operator", password: "operator-pass"))
            let account = try await userClient.auth.account()
            #expect(account.role == .user)
            // A user may read LEDs but not list images (admin-only on main).
            #expect(try await userClient.gpio.leds().power)
            let forbidden = await expectError(.permission) { try await userClient.storage.images() }
            #expect(forbidden?.status == 403)
            try await client.users.update(username: "operator", role: .admin)
            try await client.users.resetPassword(username: "operator", password: "another-pass")
            try await client.users.update(username: "operator", enabled: false)
            list = try await client.users.list()
            #expect(list.contains { $0.username == "operator" && $0.role == .admin && !$0.enabled })
            try await client.users.delete(username: "operator")
            list = try await client.users.list()
            #expect(!list.contains { $0.username == "operator" })
            await expectError(.usage) { try await client.users.create(username: "-bad", password: "long-enough") }
            await expectError(.usage) { try await client.users.update(username: "admin") }
            await userClient.close()
        }
    }

    @Test("Raw request returns data and raises api on a non-zero code", arguments: bothGenerations)
    func rawRequest(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { _, client in
            let info = try await client.request("GET", "/api/vm/info")
            #expect(info[generation == .legacy ? "firmware" : "application"]?.stringValue == client.version)
            let pressed = try await client.request("POST", "/api/vm/gpio", body: ["type": "reset", "duration": 50])
            #expect(pressed.isNull)
            let error = await expectError(.api) { try await client.request("POST", "/api/vm/gpio", body: ["duration": 50]) }
            #expect(error?.code == -1)
        }
    }
}
