import NanoKVM
import NanoKVMSimulator
import Testing

@Suite("More REST areas: Tailscale actions, Wi-Fi, uploads, downloads", .timeLimit(.minutes(1)))
struct MoreAreaTests {
    @Test("Tailscale lifecycle on both route families", arguments: bothGenerations)
    func tailscale(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { _, client in
            let tailscale = client.tailscale
            try await tailscale.install()
            var status = try await tailscale.status()
            #expect(status.state == .notLoggedIn)
            let url = try await tailscale.login()
            #expect(url?.hasPrefix("https://") == true)
            status = try await tailscale.status()
            #expect(status.state == .running && !status.ip.isEmpty)
            #expect(try await tailscale.login() == nil)  // already logged in
            try await tailscale.down()
            #expect(try await tailscale.status().state == .stopped)
            try await tailscale.up()
            #expect(try await tailscale.status().state == .running)
            if generation == .current {
                try await tailscale.stop()
                #expect(try await tailscale.status().state == .notRunning)
                try await tailscale.start()
                try await tailscale.restart()
                try await tailscale.logout()
                #expect(try await tailscale.status().state == .notLoggedIn)
                try await tailscale.uninstall()
                #expect(try await tailscale.status().state == .notInstalled)
            } else {
                // 2.0.x: up/down through POST …/status; no stop/restart/uninstall routes yet.
                await expectError(.unsupported) { try await tailscale.stop() }
                await expectError(.unsupported) { try await tailscale.uninstall() }
                try await tailscale.logout()
            }
        }
    }

    @Test("Wi-Fi calls reach the device and map its codes (current)")
    func wifi() async throws {
        try await withDevice(.current) { _, client in
            let connect = await expectError(.api) { try await client.network.connectWiFi(ssid: "lab", password: "secret123") }
            #expect(connect?.code == -2 && connect?.path == "/api/network/wifi/connect")
            let disconnect = await expectError(.api) { try await client.network.disconnectWiFi() }
            #expect(disconnect?.code == -1)
            // Not in access-point mode: the setup endpoint refuses with −1.
            let setup = await expectError(.api) { try await client.network.configureWiFiInAccessPointMode(ssid: "lab", password: "x", accessPointKey: "k") }
            #expect(setup?.code == -1 && setup?.message == "invalid mode")
            await expectError(.api) { try await client.network.verifyAccessPointKey("k") }
        }
    }

    @Test("ISO upload (multipart) and offline update (current)")
    func uploads() async throws {
        try await withDevice(.current) { _, client in
            var iso = [UInt8](repeating: 0, count: 0x9000)
            iso.replaceSubrange(0x8001..<0x8006, with: Array("CD001".utf8))
            let status = try await client.downloads.uploadISO(named: "tiny-test.iso", contents: iso)
            #expect(status.state == .idle)
            #expect(try await client.storage.images().contains("/data/tiny-test.iso"))
            let notISO = await expectError(.api) { try await client.downloads.uploadISO(named: "fake.iso", contents: [1, 2, 3]) }
            #expect(notISO?.message.contains("ISO") == true)
            let update = await expectError(.api) {
                try await client.application.updateOffline(archive: [0x1F, 0x8B, 0, 0], filename: "nanokvm_2.5.2.tar.gz", sha256: String(repeating: "a", count: 64))
            }
            #expect(update?.code == -1 && update?.path == "/api/application/update/offline")
            await expectError(.api) { try await client.application.update(timeout: .seconds(5)) }
        }
    }

    @Test("Image download: start, status, cancel (current)")
    func downloads() async throws {
        try await withDevice(.current) { _, client in
            let started = try await client.downloads.downloadImage(from: "https://example.com/images/tiny.iso", sha256: String(repeating: "b", count: 64))
            #expect(started.state == .inProgress || started.state == .idle || started.state == .failed)
            let status = try await client.downloads.status()
            #expect([.idle, .inProgress, .success, .failed, .checksumFailed].contains(status.state))
            do {
                try await client.downloads.cancel()
            } catch let error as NanoKVMError {
                #expect(error.kind == .api && error.code == -1)
            }
        }
    }
}
