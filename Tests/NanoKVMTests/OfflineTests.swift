import Testing

@testable import NanoKVM

@Suite("Versions, profiles and the endpoint table", .timeLimit(.minutes(1)))
struct FirmwareProfileTests {
    @Test func parsing() {
        #expect(FirmwareVersion(parsing: "2.0.9") == FirmwareVersion(2, 0, 9))
        #expect(FirmwareVersion(parsing: "v2.3.1") == FirmwareVersion(2, 3, 1))
        #expect(FirmwareVersion(parsing: "2.3") == FirmwareVersion(2, 3, 0))
        #expect(FirmwareVersion(parsing: "2.5.0-beta1")?.suffix == "-beta1")
        #expect(FirmwareVersion(parsing: " 2.4.2\n") == FirmwareVersion(2, 4, 2))
        #expect(FirmwareVersion(parsing: "") == nil)
        #expect(FirmwareVersion(parsing: "two") == nil)
        #expect(FirmwareVersion(parsing: "2.x") == nil)
        #expect(FirmwareVersion(parsing: "2.3.1abc") == nil)
        #expect(FirmwareVersion(2, 3, 1) < FirmwareVersion(2, 3, 2))
        #expect(FirmwareVersion(2, 10, 0) > FirmwareVersion(2, 9, 9))
    }

    func profile(_ text: String, multiUser: Bool = false, selection: ProtocolSelection = .auto) -> FirmwareProfile {
        FirmwareProfile(versionString: text, version: FirmwareVersion(parsing: text) ?? FirmwareVersion(0, 0, 0), isMultiUser: multiUser, selection: selection)
    }

    @Test func generations() {
        #expect(profile("2.0.9").generation == .legacy)
        #expect(profile("2.3.1").generation == .legacy)
        #expect(profile("2.3.2").generation == .current)
        #expect(profile("2.5.1", multiUser: true).generation == .current)
        #expect(profile("2.0.9", selection: .current).generation == .current)
        #expect(profile("2.0.9", selection: .current).detectedGeneration == .legacy)
        #expect(profile("2.5.0", selection: .legacy).generation == .legacy)
    }

    @Test("Behaviour switches of §11.3")
    func switches() {
        let old = profile("2.0.9")
        #expect(old.isClosedSourceGeneration && !old.infoHasIPList && old.frameDetectionToggles)
        #expect(old.pasteLimit == .utf8Bytes(1024) && old.pasteCharacterDelay == .milliseconds(50))
        #expect(old.pasteLayouts.isEmpty && old.legacyModifierEncoding == .flags && old.heartbeatInterval == .seconds(60))
        #expect(old.tailscalePrefix == "/api/network/tailscale" && old.tailscaleStateKey == "status")
        #expect(!old.mjpegPartsHaveContentLength && !old.mountSupportsCDROM)
        #expect(!profile("2.2.2").isClosedSourceGeneration && profile("2.2.2").frameDetectionToggles)
        #expect(!profile("2.2.3").frameDetectionToggles)
        #expect(profile("2.1.3").legacyModifierEncoding == .bitValues)
        #expect(profile("2.3.0").pasteLayouts == ["en", "de", "ru"] && profile("2.4.1").pasteLayouts.contains("fr"))
        #expect(profile("2.4.3").pasteLimit == .utf8Bytes(1024))
        let new = profile("2.5.1", multiUser: true)
        #expect(new.pasteLimit == .codePoints(833) && new.pasteCharacterDelay == .milliseconds(30))
        #expect(new.heartbeatInterval == .seconds(15) && new.changePasswordNeedsCurrentPassword)
        #expect(new.serverReleasesInputOnDisconnect && new.sendsWebSocketEvents && new.webSocketReadTimeout == .seconds(90))
        #expect(!profile("2.5.0").changePasswordNeedsCurrentPassword)
    }

    @Test("Endpoint availability and unsupported errors")
    func endpoints() throws {
        let old = profile("2.0.9")
        #expect(old.supports(.imagesLegacy) && !old.supports(.images))
        #expect(old.supports(.gpioLEDsLegacy) && !old.supports(.gpioLEDs))
        #expect(old.supports(.frameDetectionState) && !old.supports(.hidMode) && !old.supports(.listUsers))
        #expect(old.supports(.firmwareVersion) && !old.supports(.applicationVersion))
        let mid = profile("2.2.6")
        #expect(mid.supports(.hostname) && mid.supports(.setMouseJiggler) && !mid.supports(.hdmi) && !mid.supports(.frameDetectionState))
        #expect(!mid.supports(.imagesLegacy) && mid.supports(.tailscaleStatus) && !mid.supports(.tailscaleStatusLegacy))
        #expect(profile("2.1.5").supports(.tailscaleRestartLegacy) && !profile("2.1.6").supports(.tailscaleRestartLegacy))
        let current = profile("2.5.1", multiUser: true)
        #expect(current.supports(.listUsers) && current.supports(.keyboardLEDs) && current.supports(.updateServer))
        #expect(!profile("2.5.0").supports(.listUsers))
        do {
            try old.require(.keyboardLEDs, device: "http://x")
            Issue.record("expected unsupported")
        } catch {
            #expect(error.kind == .unsupported)
            #expect(error.method == "GET" && error.path == "/api/hid/leds" && error.device == "http://x")
        }
    }

    @Test("Paste chunks: 1024 UTF-8 bytes before 2.5.0, 833 code points after, never inside a character")
    func pasteChunks() throws {
        let ascii = String(repeating: "a", count: 2500)
        let byBytes = try HIDAPI.chunks(of: ascii, limit: .utf8Bytes(1024))
        #expect(byBytes.map(\.utf8.count) == [1024, 1024, 452])
        #expect(byBytes.joined() == ascii)
        let euro = String(repeating: "€", count: 1000)  // 3 bytes each
        let euroChunks = try HIDAPI.chunks(of: euro, limit: .utf8Bytes(1024))
        #expect(euroChunks.allSatisfy { $0.utf8.count <= 1024 } && euroChunks.joined() == euro)
        #expect(euroChunks[0].utf8.count == 1023)
        let points = try HIDAPI.chunks(of: euro, limit: .codePoints(833))
        #expect(points.map { $0.unicodeScalars.count } == [833, 167])
        // A flag emoji is two code points; a family emoji several: never split.
        let emoji = String(repeating: "🇩🇪", count: 500) + String(repeating: "👨‍👩‍👧", count: 100)
        let emojiChunks = try HIDAPI.chunks(of: emoji, limit: .codePoints(833))
        #expect(emojiChunks.joined() == emoji)
        #expect(emojiChunks.allSatisfy { $0.unicodeScalars.count <= 833 })
        #expect(try HIDAPI.chunks(of: "", limit: .codePoints(833)).isEmpty)
        #expect(try HIDAPI.chunks(of: "a\r\nb", limit: .utf8Bytes(2)) == ["a", "\r\n", "b"])
    }
}

@Suite("HID report encodings", .timeLimit(.minutes(1)))
struct HIDReportTests {
    @Test("Binary frames of §8.2")
    func binary() {
        #expect(HIDBinaryEncoding.encode(.heartbeat) == [0x00])
        #expect(HIDBinaryEncoding.encode(.keyboard(KeyboardReport(keys: [0x04]))) == [1, 0, 0, 4, 0, 0, 0, 0, 0])
        #expect(HIDBinaryEncoding.encode(.keyboard(.released)) == [1, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(HIDBinaryEncoding.encode(.keyboard(KeyboardReport(modifiers: 0x05, keys: [0x4C]))) == [1, 5, 0, 0x4C, 0, 0, 0, 0, 0])
        #expect(HIDBinaryEncoding.encode(.keyboard(KeyboardReport(keys: [1, 2, 3, 4, 5, 6, 7]))) == [1, 0, 0, 1, 2, 3, 4, 5, 6])
        #expect(HIDBinaryEncoding.encode(.relativeMouse(RelativeMouseReport(dx: 5, dy: -3))) == [2, 0, 5, 0xFD, 0])
        #expect(HIDBinaryEncoding.encode(.relativeMouse(RelativeMouseReport(wheel: -1))) == [2, 0, 0, 0, 0xFF])
        #expect(HIDBinaryEncoding.encode(.absoluteMouse(AbsoluteMouseReport(x: 16384, y: 16384))) == [2, 0, 0, 0x40, 0, 0x40, 0])
        #expect(HIDBinaryEncoding.encode(.absoluteMouse(AbsoluteMouseReport(buttons: 1, x: 16384, y: 16384))) == [2, 1, 0, 0x40, 0, 0x40, 0])
        #expect(AbsoluteMouseReport(fractionX: 1.5, fractionY: -1).x == 32767)
        #expect(AbsoluteMouseReport(fractionX: .nan, fractionY: 0.5).bytes == [0, 0, 0, 0x00, 0x40, 0])
        #expect(HIDBinaryEncoding.encode(.legacy(.heartbeat)) == nil)
    }

    @Test("Legacy JSON arrays of §8.6")
    func legacy() {
        var bits = LegacyHIDEncoder(modifierEncoding: .bitValues, buttonBitValues: true, scrollSignFlipped: true)
        #expect(bits.encode(.heartbeat).map(\.text) == ["[0]"])
        #expect(bits.encode(.keyboard(KeyboardReport(modifiers: 0x22, keys: [0x04]))).map(\.text) == ["[1,4,0,34,0,0]"])
        #expect(bits.encode(.keyboard(KeyboardReport(modifiers: 0x40, keys: [0x14]))).map(\.text) == ["[1,20,0,0,64,0]"])
        #expect(bits.encode(.keyboard(.released)).map(\.text) == ["[1,0,0,0,0,0]"])
        // Modifiers alone travel as the modifier's own usage (the server zeroes usage 0).
        #expect(bits.encode(.keyboard(KeyboardReport(modifiers: 0x02))).map(\.text) == ["[1,225,0,2,0,0]"])
        // Two keys: the newest one.
        #expect(bits.encode(.keyboard(KeyboardReport(keys: [4, 5]))).map(\.text) == ["[1,5,0,0,0,0]"])
        var flags = LegacyHIDEncoder(modifierEncoding: .flags, buttonBitValues: false, scrollSignFlipped: false)
        #expect(flags.encode(.keyboard(KeyboardReport(modifiers: 0x01 | 0x40, keys: [0x04]))).map(\.text) == ["[1,4,1,0,2,0]"])
        #expect(flags.encode(.keyboard(KeyboardReport(modifiers: 0x88, keys: [0x04]))).map(\.text) == ["[1,4,0,0,0,1]"])
        // Mouse: button down, move while held, wheel, release.
        #expect(flags.encode(.relativeMouse(RelativeMouseReport(buttons: 0x04))).map(\.text) == ["[2,1,3,0,0]"])
        #expect(flags.encode(.relativeMouse(RelativeMouseReport(buttons: 0x04, dx: 10, dy: -2))).map(\.text) == ["[2,3,4,10,-2]"])
        #expect(flags.encode(.relativeMouse(RelativeMouseReport(buttons: 0x04, wheel: 1))).map(\.text) == ["[2,4,0,0,-1]"])
        #expect(flags.encode(.relativeMouse(RelativeMouseReport())).map(\.text) == ["[2,0,0,0,0]"])
        #expect(bits.encode(.relativeMouse(RelativeMouseReport(wheel: 1))).map(\.text) == ["[2,4,0,0,1]"])
        #expect(bits.encode(.relativeMouse(RelativeMouseReport(buttons: 2))).map(\.text) == ["[2,1,2,0,0]"])
        #expect(bits.encode(.absoluteMouse(AbsoluteMouseReport(buttons: 0, x: 100, y: 200))).map(\.text) == ["[2,2,0,100,200]", "[2,0,0,0,0]"])
        #expect(bits.encode(.absoluteMouse(AbsoluteMouseReport(buttons: 1, x: 100, y: 200))).map(\.text) == ["[2,2,0,100,200]", "[2,1,1,0,0]"])
        #expect(bits.encode(.legacy(.mouse(event: .scroll, button: 0, x: 0, y: 5))).map(\.text) == ["[2,4,0,0,5]"])
    }
}

@Suite("Envelopes, addresses, errors", .timeLimit(.minutes(1)))
struct EnvelopeTests {
    @Test func envelopes() throws {
        let ok = try Envelope.parse(Array(#"{"code":0,"msg":"success","data":{"a":[1,2]}}"#.utf8))
        #expect(ok.code == 0 && ok.message == "success" && ok.data["a"]?[1] == 2)
        let failure = try Envelope.parse(Array(#"{"code":-2,"msg":"invalid username or password","data":null}"#.utf8))
        #expect(failure.code == -2 && failure.data.isNull)
        let ai = try Envelope.parse(Array(#"{"code":-1,"message":"busy"}"#.utf8))
        #expect(ai.message == "busy")
        for bad in ["", "<html>", #""unauthorized""#, "[1,2]", #"{"hello":1}"#, #"{"code":"0"}"#, #"{"code":0,"#] {
            do {
                _ = try Envelope.parse(Array(bad.utf8))
                Issue.record("\(bad) parsed")
            } catch {
                #expect(error.kind == .protocol)
            }
        }
    }

    @Test func addresses() throws {
        #expect(try DeviceAddress(parsing: "192.168.1.5").baseURL == "http://192.168.1.5")
        #expect(try DeviceAddress(parsing: "kvm.local:8080").port == 8080)
        #expect(try DeviceAddress(parsing: "https://kvm/").baseURL == "https://kvm")
        #expect(try DeviceAddress(parsing: "https://kvm:8443").webSocketURL("/api/ws") == "wss://kvm:8443/api/ws")
        #expect(try DeviceAddress(parsing: "[::1]:80").baseURL == "http://[::1]")
        #expect(try DeviceAddress(parsing: "http://[fe80::1]:8080").hostHeader == "[fe80::1]:8080")
        for bad in ["ftp://x", "http://x/api", "", "x:0", "x:99999", "http://user:pw@x", "[::1"] {
            #expect(throws: NanoKVMError.self) { try DeviceAddress(parsing: bad) }
        }
    }

    @Test func fingerprints() throws {
        let hex = String(repeating: "ab", count: 32)
        let colons = (0..<32).map { _ in "AB" }.joined(separator: ":")
        #expect(try TLSSetup.normalisedFingerprint(colons) == hex)
        #expect(try TLSSetup.normalisedFingerprint("sha256:" + hex) == hex)
        #expect(throws: NanoKVMError.self) { try TLSSetup.normalisedFingerprint("abcd") }
        #expect(throws: NanoKVMError.self) { try TLSSetup.normalisedFingerprint(String(repeating: "zz", count: 32)) }
        #expect(TLSSetup.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func errorDescription() {
        let error = NanoKVMError(.api, "invalid parameters", code: -1, status: 200, method: "POST", path: "/api/vm/gpio")
        #expect(error.description == "POST /api/vm/gpio: invalid parameters (code -1)")
        #expect(NanoKVMError(.api, "the device failed", status: 500, method: "GET", path: "/x").description == "GET /x: the device failed (HTTP 500)")
    }

    @Test func macAddresses() {
        #expect(NetworkAPI.normalisedMAC("aa-bb-cc-dd-ee-ff") == "AA:BB:CC:DD:EE:FF")
        #expect(NetworkAPI.normalisedMAC("aabb.ccdd.eeff") == "AA:BB:CC:DD:EE:FF")
        #expect(NetworkAPI.normalisedMAC("AABBCCDDEEFF") == "AA:BB:CC:DD:EE:FF")
        #expect(NetworkAPI.normalisedMAC("AA:BB:CC:DD:EE") == nil)
        #expect(NetworkAPI.normalisedMAC("GG:BB:CC:DD:EE:FF") == nil)
    }

    @Test func webSocketEvents() {
        let led = #"{"type":"hid-led-status","data":"{\"numLock\":true,\"capsLock\":false,\"scrollLock\":false,\"known\":true,\"updatedAt\":\"2026-08-20T14:29:56+08:00\"}"}"#
        #expect(WebSocketFrameHandler.event(fromText: led) == .keyboardLEDs(KeyboardLEDs(numLock: true, capsLock: false, scrollLock: false, known: true, updatedAt: "2026-08-20T14:29:56+08:00")))
        #expect(WebSocketFrameHandler.event(fromText: #"{"type":"stream","state":0}"#) == .streamState(0))
        if case .captureStatus(let data) = WebSocketFrameHandler.event(fromText: #"{"type":"capture-status","data":"{\"ok\":true,\"mode\":\"mjpeg\"}"}"#) {
            #expect(data["mode"] == "mjpeg")
        } else {
            Issue.record("capture-status not recognised")
        }
        #expect(WebSocketFrameHandler.event(fromText: "hello") == .text("hello"))
    }
}
