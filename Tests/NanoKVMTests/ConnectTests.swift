import NanoKVM
import NanoKVMSimulator
import Testing

@Suite("Connecting, authentication and error mapping (simulator)", .timeLimit(.minutes(1)))
struct ConnectTests {
    @Test("Connect detects generation and version", arguments: bothGenerations)
    func connect(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            #expect(client.generation == (generation == .legacy ? .legacy : .current))
            #expect(client.version == simulator.configuration.effectiveApplicationVersion)
            #expect(client.profile.isMultiUser == (generation == .current))
            #expect(client.deviceInfo?.version == client.version)
            #expect(client.deviceInfo?.ip.isEmpty == false)
            #expect(await client.loginCount() == 1)
            #expect(await client.currentToken() != nil)
            let info = try await client.info()
            #expect(info.raw[generation == .legacy ? "firmware" : "application"]?.stringValue == client.version)
            #expect(info.ips == client.deviceInfo?.ips)
        }
    }

    @Test("A saved session with known firmware opens the stream first and confirms the firmware beside it", arguments: bothGenerations)
    func reusedSession(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, first in
            guard let token = await first.currentToken() else { throw NanoKVMError(.auth, "no token") }
            var options = try ConnectionOptions(url: simulator.baseURL, token: token)
            options.knownFirmware = first.knownFirmware
            simulator.clearRequestLog()
            let client = try await NanoKVMClient.connect(options)
            #expect(client.profile == first.profile, "ready with the known profile")
            let frame = try await client.frames.screenshot()
            #expect(frame.width == simulator.configuration.width)
            let log = simulator.requestLog.map(\.path)
            #expect(!log.contains("/api/auth/users"), "no multi-user probe: \(log)")
            #expect(!log.contains("/api/auth/login"), "no login: \(log)")
            #expect(log.firstIndex(of: "/api/stream/mjpeg") != nil)
            // The confirmation ran beside the stream, and a REST call waits for it.
            _ = try await client.gpio.leds()
            #expect(simulator.requestLog.contains { $0.path == "/api/vm/info" && $0.hadCookie }, "the firmware was confirmed")
            #expect(client.deviceInfo?.version == first.version)
            await client.close()
        }
    }

    @Test("A saved session whose firmware changed is corrected before the first call that depends on it")
    func reusedSessionAfterAnUpdate() async throws {
        try await withDevice(.current) { simulator, first in
            guard let token = await first.currentToken() else { throw NanoKVMError(.auth, "no token") }
            var options = try ConnectionOptions(url: simulator.baseURL, token: token)
            // As if the device ran 2.2.2 when the session was saved and was updated since.
            options.knownFirmware = KnownFirmware(versionString: "2.2.2", isMultiUser: false)
            let client = try await NanoKVMClient.connect(options)
            _ = try await client.gpio.leds()
            #expect(client.version == first.version, "the version the device reports now")
            #expect(client.profile.isMultiUser == first.profile.isMultiUser)
            #expect(client.generation == .current)
            let hid = try await client.openHIDSession()
            await hid.close()
            await client.close()
        }
    }

    @Test("A saved session the device rejects says so on the first call")
    func reusedSessionRejected() async throws {
        try await withDevice(.current) { simulator, first in
            guard let token = await first.currentToken() else { throw NanoKVMError(.auth, "no token") }
            var options = try ConnectionOptions(url: simulator.baseURL, token: token)
            options.knownFirmware = first.knownFirmware
            simulator.expireTokens()
            let client = try await NanoKVMClient.connect(options)
            do {
                _ = try await client.gpio.leds()
                Issue.record("a rejected token must fail")
            } catch let error as NanoKVMError {
                #expect(error.kind == .auth)
                #expect(error.message.contains("saved session"), "\(error.message)")
            }
            await client.close()
        }
    }

    @Test("Known firmware survives the token file's line format")
    func knownFirmwareLine() {
        let known = KnownFirmware(versionString: "2.5.1", isMultiUser: true)
        #expect(KnownFirmware(line: known.line) == known)
        #expect(KnownFirmware(line: "firmware 2.0.9 single-user")?.isMultiUser == false)
        #expect(KnownFirmware(line: "garbage") == nil)
        #expect(KnownFirmware(line: "firmware x.y multi-user") == nil)
    }

    @Test("A forced protocol overrides the detected generation", arguments: bothGenerations)
    func forcedProtocol(generation: SimulatorGeneration) async throws {
        let forced: ProtocolSelection = generation == .legacy ? .current : .legacy
        try await withDevice(generation, options: { $0.protocolSelection = forced }) { _, client in
            #expect(client.generation.rawValue == forced.rawValue)
            #expect(client.profile.detectedGeneration.rawValue == generation.rawValue)
        }
    }

    @Test("Other application versions pick their switches", arguments: ["2.2.2", "2.3.1", "2.3.2", "2.4.3", "2.5.0"])
    func versions(version: String) async throws {
        try await withDevice(version < "2.3.2" ? .legacy : .current, configure: { $0.applicationVersion = version }) { _, client in
            #expect(client.version == version)
            #expect(client.generation == (version < "2.3.2" ? .legacy : .current))
            #expect(!client.profile.isMultiUser)
            #expect(client.profile.frameDetectionToggles == (version == "2.2.2"))
        }
    }

    @Test("Wrong password raises auth with the device's code", arguments: bothGenerations)
    func wrongPassword(generation: SimulatorGeneration) async throws {
        try await withSimulator(generation) { simulator in
            let error = await expectError(.auth) {
                try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL, password: "wrong"))
            }
            #expect(error?.code != nil && error?.code != 0)
            #expect(error?.path == "/api/auth/login" && error?.method == "POST" && error?.device == simulator.baseURL)
            // Unknown user too.
            await expectError(.auth) { try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL, username: "nobody", password: "admin")) }
        }
    }

    @Test("Lockout (code −5) raises auth saying locked")
    func lockout() async throws {
        try await withSimulator(.current, configure: { $0.loginLockout = (maxFailures: 2, duration: .seconds(60)) }) { simulator in
            for _ in 0..<2 {
                let error = await expectError(.auth) { try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL, password: "bad")) }
                #expect(error?.code == -2)
            }
            // Even the right password is refused while locked.
            let locked = await expectError(.auth) { try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL, password: "admin")) }
            #expect(locked?.code == -5)
            #expect(locked?.message.contains("locked") == true)
        }
    }

    @Test("No password: refused with auth, accepted with authentication disabled", arguments: bothGenerations)
    func noPassword(generation: SimulatorGeneration) async throws {
        try await withSimulator(generation) { simulator in
            let error = await expectError(.auth) { try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL)) }
            #expect(error?.status == 401)
        }
        try await withSimulator(generation, configure: { $0.authenticationDisabled = true }) { simulator in
            let client = try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL))
            #expect(await client.currentToken() == nil)
            #expect(try await client.gpio.leds().power)
            // A login on such a device succeeds without a token.
            let withPassword = try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL, password: "anything"))
            #expect(await withPassword.currentToken() == nil)
            #expect(try await withPassword.info().version == client.version)
            await client.close()
            await withPassword.close()
        }
    }

    @Test("An explicit token logs in without a password", arguments: bothGenerations)
    func tokenReuse(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, first in
            let token = try #require(await first.currentToken())
            let second = try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL, token: token))
            #expect(await second.loginCount() == 0)
            #expect(try await second.gpio.leds().power)
            // A rejected token without a password is an auth error, not a retry loop.
            simulator.expireTokens()
            let error = await expectError(.auth) { try await second.gpio.leds() }
            #expect(error?.status == 401)
            await expectError(.auth) { try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL, token: "forged.token.value")) }
            await second.close()
        }
    }

    @Test("Expired token: exactly one re-login, then the request is repeated", arguments: bothGenerations)
    func reloginOnce(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let before = try #require(await client.currentToken())
            let start = await simulator.state()
            simulator.expireTokens()
            #expect(try await client.gpio.leds().power)
            #expect(await client.loginCount() == 2)
            #expect(await client.currentToken() != before)
            // The device saw exactly one more login and no failed one.
            let after = await simulator.state()
            #expect(after.loginCount == start.loginCount + 1 && after.failedLoginCount == start.failedLoginCount)
            // The LED read went out twice: 401 first, then with the new cookie.
            let reads = simulator.requestLog.filter { $0.path.hasPrefix("/api/vm/gpio") && $0.method == "GET" }
            #expect(reads.map(\.status) == [401, 200])
            // Many concurrent requests after another expiry still log in once.
            simulator.expireTokens()
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<12 { group.addTask { try await client.gpio.leds().power } }
                for try await on in group { #expect(on) }
            }
            #expect(await client.loginCount() == 3)
            let final = await simulator.state()
            #expect(final.loginCount == start.loginCount + 2)
        }
    }

    @Test("Re-login that fails (password changed elsewhere) raises auth once", arguments: bothGenerations)
    func reloginFails(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            let other = try await NanoKVMClient.connect(ConnectionOptions(url: simulator.baseURL, password: "admin"))
            try await other.auth.changePassword(current: "admin", new: "new-password-1")
            simulator.expireTokens()
            let error = await expectError(.auth) { try await client.gpio.leds() }
            #expect(error?.path == "/api/auth/login")
            #expect(await client.loginCount() == 1)
            await other.close()
        }
    }

    @Test("HTTP 500 raises api with the status", arguments: bothGenerations)
    func http500(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            simulator.inject(.http500(path: "/api/vm/info"))
            let error = await expectError(.api) { try await client.info() }
            #expect(error?.status == 500)
            #expect(error?.method == "GET" && error?.path == "/api/vm/info" && error?.device == simulator.baseURL)
            #expect(error?.code == nil)
            // The next call works again.
            let again = try await client.info()
            #expect(again.version == client.version)
        }
    }

    @Test("Malformed JSON and JSON that is not an envelope raise protocol", arguments: bothGenerations)
    func malformedJSON(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { simulator, client in
            simulator.inject(.malformedJSON(path: "/api/vm/info"))
            let error = await expectError(.protocol) { try await client.info() }
            #expect(error?.path == "/api/vm/info" && error?.status == 200 && error?.device == simulator.baseURL)
            simulator.inject(.notAnEnvelope(path: "/api/vm/gpio"))
            let notEnvelope = await expectError(.protocol) { try await client.gpio.leds() }
            #expect(notEnvelope?.message.contains("envelope") == true)
            simulator.inject(.notAnEnvelope(path: "/api/vm/info"))
            await expectError(.protocol) { try await client.request("GET", "/api/vm/info") }
        }
    }

    @Test("A non-zero code raises api with code and the device's message", arguments: bothGenerations)
    func apiCode(generation: SimulatorGeneration) async throws {
        try await withDevice(generation) { _, client in
            let error = await expectError(.api) { try await client.request("POST", "/api/vm/gpio", body: ["type": "sideways"]) }
            #expect(error?.code == -2 || error?.code == -1)
            #expect(error?.message.isEmpty == false)
            #expect(error?.method == "POST" && error?.path == "/api/vm/gpio")
            let missing = await expectError(.api) { try await client.request("GET", "/api/no/such/route") }
            #expect(missing?.status == 404)
            await expectError(.usage) { try await client.request("FETCH", "/api/vm/info") }
            await expectError(.usage) { try await client.request("GET", "api/vm/info") }
        }
    }

    @Test("Connection refused raises transport")
    func connectionRefused() async throws {
        let simulator = NanoKVMSimulator(configuration: .fast(.current))
        try await simulator.start()
        let url = simulator.baseURL
        await simulator.stop()
        let clock = ContinuousClock()
        let start = clock.now
        let error = await expectError(.transport) { try await NanoKVMClient.connect(ConnectionOptions(url: url, password: "admin")) }
        #expect(error?.message.contains("refused") == true)
        #expect(error?.device == url)
        #expect(clock.now - start < .seconds(5))
    }

    @Test("Connection dropped mid-request raises transport; a slow answer raises timeout", arguments: bothGenerations)
    func droppedAndSlow(generation: SimulatorGeneration) async throws {
        try await withDevice(generation, options: { $0.timeout = .milliseconds(600) }) { simulator, client in
            simulator.inject(.dropConnection(path: "/api/vm/info"))
            let dropped = await expectError(.transport) { try await client.info() }
            #expect(dropped?.path == "/api/vm/info")
            simulator.inject(.delay(seconds: 3, path: "/api/vm/info"))
            let clock = ContinuousClock()
            let start = clock.now
            let slow = await expectError(.timeout) { try await client.info() }
            #expect(clock.now - start < .seconds(2))
            #expect(slow?.path == "/api/vm/info" && slow?.method == "GET")
        }
    }

    @Test("Task cancellation raises cancelled")
    func cancellation() async throws {
        try await withDevice(.current) { simulator, client in
            simulator.inject(.delay(seconds: 5, path: "/api/vm/info"))
            let task = Task { try await client.info() }
            try await Task.sleep(for: .milliseconds(200))
            task.cancel()
            let clock = ContinuousClock()
            let start = clock.now
            let error = await expectError(.cancelled) { try await task.value }
            #expect(clock.now - start < .seconds(2))
            #expect(error?.path == "/api/vm/info")
        }
    }

    @Test("Unsupported endpoints fail without sending anything")
    func unsupportedWithoutSending() async throws {
        try await withDevice(.legacy) { simulator, client in
            // If the client sent the request, this pending fault would turn it into HTTP 500.
            simulator.inject(.http500(path: "/api/hid/leds"))
            let error = await expectError(.unsupported) { try await client.hid.keyboardLEDs() }
            #expect(error?.path == "/api/hid/leds" && error?.method == "GET" && error?.device == simulator.baseURL)
            await expectError(.unsupported) { try await client.system.hostname() }
            await expectError(.unsupported) { try await client.users.list() }
            await expectError(.unsupported) { try await client.storage.mount("/data/memtest86.IMG", cdrom: true) }
            await expectError(.unsupported) { try await client.screen.setGOP(30) }
            await expectError(.unsupported) { try await client.hid.paste("x", layout: .de) }
            let hardware = try await client.hardware()
            #expect(hardware == nil)
            #expect(!simulator.requestLog.contains { $0.path == "/api/hid/leds" || $0.path == "/api/vm/hostname" || $0.path == "/api/auth/users" })
            // The fault is still pending: the raw request (never version-checked) meets it.
            let raw = await expectError(.api) { try await client.request("GET", "/api/hid/leds") }
            #expect(raw?.status == 500)
        }
    }

    @Test("A closed client refuses further calls")
    func closed() async throws {
        try await withDevice(.current) { _, client in
            await client.close()
            await expectError(.usage) { try await client.info() }
        }
    }
}
