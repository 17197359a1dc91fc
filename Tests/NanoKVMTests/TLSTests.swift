import NanoKVM
import Testing

/// HTTPS against a loopback server with a device-like self-signed certificate made by the
/// `openssl` command line.
@Suite("TLS trust: default, insecure, CA file, SHA-256 pin", .serialized, .timeLimit(.minutes(1)))
struct TLSTests {
    func withTLSDevice(caSigned: Bool = false, _ body: (ScriptedDevice, TestCertificate) async throws -> Void) async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        if caSigned { _ = try certificate.makeCASignedLeaf() }
        let device = try await ScriptedDevice.start(tls: try certificate.serverConfiguration()) { request in
            switch request.path {
            case "/api/vm/info": return ScriptedDevice.info
            case "/api/vm/gpio": return ScriptedDevice.envelope(#"{"pwr":true,"hdd":false}"#)
            case "/api/ws": return ScriptedDevice.answer(status: "403 Forbidden", body: Array(#""forbidden""#.utf8))
            default: return ScriptedDevice.answer(status: "404 Not Found", contentType: "text/plain", body: Array("404 page not found".utf8))
            }
        }
        do {
            try await body(device, certificate)
            await device.stop()
        } catch {
            await device.stop()
            throw error
        }
    }

    @Test("Verification is on by default: a self-signed certificate is refused")
    func defaultRefuses() async throws {
        try await withTLSDevice { device, _ in
            let error = await expectError(.transport) {
                try await NanoKVMClient.connect(ConnectionOptions(url: "https://127.0.0.1:\(device.port)"))
            }
            #expect(error?.message.contains("TLS") == true)
            #expect(error?.device == "https://127.0.0.1:\(device.port)")
        }
    }

    @Test("insecure skips verification")
    func insecure() async throws {
        try await withTLSDevice { device, _ in
            let client = try await NanoKVMClient.connect(ConnectionOptions(url: "https://127.0.0.1:\(device.port)", trust: .insecure))
            #expect(client.version == "2.4.3")
            #expect(try await client.gpio.leds().power)
            await client.close()
        }
    }

    @Test("A matching SHA-256 pin (colons, upper case) is trusted for HTTP and WebSocket")
    func pinned() async throws {
        try await withTLSDevice { device, certificate in
            #expect(certificate.fingerprint.count == 95)
            let client = try await NanoKVMClient.connect(
                ConnectionOptions(url: "https://127.0.0.1:\(device.port)", trust: .pinnedSHA256(certificate.fingerprint)))
            #expect(try await client.gpio.leds().power)
            // The WebSocket handshake runs over TLS with the same trust; the device answers 403.
            let refused = await expectError(.permission) { try await client.openHIDSession() }
            #expect(refused?.status == 403)
            let upgrade = try #require(device.requests.last { $0.path == "/api/ws" })
            #expect(upgrade.headers["origin"] == nil)
            #expect(upgrade.headers["upgrade"]?.lowercased() == "websocket")
            #expect(upgrade.headers["host"] == "127.0.0.1:\(device.port)")
            await client.close()
        }
    }

    @Test("A wrong pin is refused before any request, on HTTP and WebSocket")
    func wrongPin() async throws {
        try await withTLSDevice { device, certificate in
            let wrong = String(repeating: "00:", count: 31) + "00"
            let error = await expectError(.transport) {
                try await NanoKVMClient.connect(ConnectionOptions(url: "https://127.0.0.1:\(device.port)", trust: .pinnedSHA256(wrong)))
            }
            #expect(error?.message.contains("fingerprint") == true)
            #expect(device.requests.isEmpty)
            await expectError(.usage) {
                try await NanoKVMClient.connect(ConnectionOptions(url: "https://127.0.0.1:\(device.port)", trust: .pinnedSHA256("abc")))
            }
            _ = certificate
        }
    }

    @Test("The pin is checked on every connection: a certificate swapped later is refused (HTTP and WebSocket)")
    func swappedCertificate() async throws {
        let first = try TestCertificate.make()
        let second = try TestCertificate.make()
        defer { first.remove(); second.remove() }
        let responder: ScriptedDevice.Responder = { request in
            request.path == "/api/vm/info" ? ScriptedDevice.info : ScriptedDevice.envelope(#"{"pwr":true,"hdd":false}"#)
        }
        let original = try await ScriptedDevice.start(tls: try first.serverConfiguration(), responder: responder)
        let port = original.port
        let client = try await NanoKVMClient.connect(ConnectionOptions(url: "https://127.0.0.1:\(port)", trust: .pinnedSHA256(first.fingerprint)))
        await original.stop()
        let impostor = try await ScriptedDevice.start(tls: try second.serverConfiguration(), port: port, responder: responder)
        let http = await expectError(.transport) { try await client.gpio.leds() }
        #expect(http?.message.contains("fingerprint") == true)
        await expectError(.transport) { try await client.openHIDSession() }
        #expect(impostor.requests.isEmpty)
        await client.close()
        await impostor.stop()
    }

    @Test("A CA file trusts the certificates it signed, not others")
    func certificateAuthority() async throws {
        try await withTLSDevice(caSigned: true) { device, certificate in
            let caPath = certificate.directory.appendingPathComponent("ca.pem").path
            let client = try await NanoKVMClient.connect(
                ConnectionOptions(url: "https://127.0.0.1:\(device.port)", trust: .certificateAuthority(pemFile: caPath)))
            #expect(try await client.gpio.leds().power)
            await client.close()
            // A CA that did not sign it.
            let other = try TestCertificate.make()
            defer { other.remove() }
            let otherCA = try other.makeCASignedLeaf()
            await expectError(.transport) {
                try await NanoKVMClient.connect(ConnectionOptions(url: "https://127.0.0.1:\(device.port)", trust: .certificateAuthority(pemFile: otherCA)))
            }
            await expectError(.usage) {
                try await NanoKVMClient.connect(ConnectionOptions(url: "https://127.0.0.1:\(device.port)", trust: .certificateAuthority(pemFile: "/nonexistent.pem")))
            }
        }
    }

    @Test("Plain HTTP to an HTTPS port fails as transport, not as a crash")
    func plainToTLS() async throws {
        try await withTLSDevice { device, _ in
            await expectError(.transport) {
                try await NanoKVMClient.connect(ConnectionOptions(url: "http://127.0.0.1:\(device.port)", timeout: .seconds(3)))
            }
        }
    }
}

@Suite("Answers only a scripted device gives", .timeLimit(.minutes(1)))
struct ScriptedAnswerTests {
    @Test("HTTP→HTTPS redirect at connect switches to the HTTPS address")
    func redirectToHTTPS() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        let secure = try await ScriptedDevice.start(tls: try certificate.serverConfiguration()) { request in
            request.path == "/api/vm/info" ? ScriptedDevice.info : ScriptedDevice.envelope(#"{"pwr":false,"hdd":false}"#)
        }
        let securePort = secure.port
        let plain = try await ScriptedDevice.start { request in
            ScriptedDevice.answer(
                status: "307 Temporary Redirect", contentType: "text/html", body: [],
                extraHeaders: "Location: https://127.0.0.1:\(securePort)\(request.path)\r\n")
        }
        let client = try await NanoKVMClient.connect(
            ConnectionOptions(url: "http://127.0.0.1:\(plain.port)", trust: .pinnedSHA256(certificate.fingerprint)))
        #expect(client.address.scheme == .https && client.address.port == securePort)
        let leds = try await client.gpio.leds()
        #expect(!leds.power)
        #expect(plain.requests.count == 1)
        await client.close()
        await plain.stop()
        await secure.stop()
    }

    @Test("JSON that is not an envelope, a bare 'unauthorized' string, 403, 502")
    func oddAnswers() async throws {
        let device = try await ScriptedDevice.start { request in
            switch request.path {
            case "/api/vm/info": return ScriptedDevice.info
            case "/api/vm/hardware": return ScriptedDevice.answer(body: Array(#"{"hello":1}"#.utf8))
            case "/api/vm/gpio": return ScriptedDevice.answer(body: Array("[1,2,3]".utf8))
            case "/api/hid/mode": return ScriptedDevice.answer(status: "403 Forbidden", body: Array(#""forbidden""#.utf8))
            case "/api/vm/hostname": return ScriptedDevice.answer(status: "502 Bad Gateway", contentType: "text/plain", body: Array("bad gateway".utf8))
            case "/api/vm/web-title": return ScriptedDevice.envelope(#"{"title":42}"#)
            default: return ScriptedDevice.answer(status: "401 Unauthorized", body: Array(#""unauthorized""#.utf8))
            }
        }
        let url = "http://127.0.0.1:\(device.port)"
        let client = try await NanoKVMClient.connect(ConnectionOptions(url: url))
        let notEnvelope = await expectError(.protocol) { try await client.hardware() }
        #expect(notEnvelope?.path == "/api/vm/hardware" && notEnvelope?.device == url && notEnvelope?.status == 200)
        await expectError(.protocol) { try await client.gpio.leds() }
        let forbidden = await expectError(.permission) { try await client.hid.mode() }
        #expect(forbidden?.status == 403 && forbidden?.method == "GET")
        let gateway = await expectError(.api) { try await client.system.hostname() }
        #expect(gateway?.status == 502)
        // A field of the wrong type is a protocol error naming the field.
        let typed = await expectError(.protocol) { try await client.system.webTitle() }
        #expect(typed?.message.contains("title") == true && typed?.path == "/api/vm/web-title")
        // No password known: a 401 is an auth error, no login attempt.
        let unauthorized = await expectError(.auth) { try await client.network.dns() }
        #expect(unauthorized?.status == 401)
        #expect(!device.requests.contains { $0.path == "/api/auth/login" })
        await client.close()
        await device.stop()
    }
}

@Suite("Version fallback by route probing", .timeLimit(.minutes(1)))
struct ProbeTests {
    @Test("An unreadable version (fallback 1.0.0) is estimated from which routes exist")
    func probing() async throws {
        let device = try await ScriptedDevice.start { request in
            switch request.path {
            case "/api/vm/info":
                return ScriptedDevice.envelope(#"{"ip":"10.0.0.8","mdns":"","image":"","application":"1.0.0","deviceKey":""}"#)
            case "/api/hid/leds", "/api/auth/users":
                return ScriptedDevice.answer(status: "404 Not Found", contentType: "text/plain", body: Array("404 page not found".utf8))
            default:
                // Every other probed route exists (answers 401 without a cookie).
                return ScriptedDevice.answer(status: "401 Unauthorized", body: Array(#""unauthorized""#.utf8))
            }
        }
        let client = try await NanoKVMClient.connect(ConnectionOptions(url: "http://127.0.0.1:\(device.port)"))
        #expect(client.version == "1.0.0")
        #expect(client.profile.version == FirmwareVersion(2, 4, 1))
        #expect(client.generation == .current)
        #expect(client.deviceInfo?.ips == ["10.0.0.8"])
        let probes = device.requests.map(\.path)
        #expect(probes.contains("/api/hid/leds") && probes.contains("/api/network/dns"))
        #expect(!probes.contains("/api/hid/shortcuts"))
        await client.close()
        await device.stop()
    }
}
