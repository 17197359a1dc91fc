// Endpoint state changes (§6): ATX buttons and LEDs, paste, storage, virtual devices, settings.

import Foundation
import NanoKVM
import Testing
@testable import NanoKVMSimulator

@Suite(.timeLimit(.minutes(1))) struct EndpointTests {
    @Test func powerPressTogglesTheHostAfterThePress() async throws {
        var config = SimulatorConfiguration.fast()
        config.timeScale = 1
        try await withSimulator(config) { sim in
            let token = try await sim.login()
            #expect(try await sim.get("/api/vm/gpio", token: token).text == #"{"code":0,"msg":"success","data":{"pwr":true,"hdd":false}}"#)
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await sim.post("/api/vm/gpio", #"{"type":"power","duration":300}"#, token: token).json?["code"] == 0)
            #expect(clock.now - start >= .milliseconds(300))
            #expect(await sim.state().poweredOn == false)
            #expect(try await sim.get("/api/vm/gpio", token: token).json?["data"]?["pwr"] == false)
            #expect(sim.consoleText.isEmpty)
            _ = try await sim.post("/api/vm/gpio", #"{"type":"power","duration":100}"#, token: token)
            #expect(await sim.state().poweredOn)
            #expect(sim.consoleText.hasSuffix("nanokvm-sim login:"))
        }
    }

    @Test func longPressForcesOffAndDurationIsScaled() async throws {
        var config = SimulatorConfiguration.fast()
        config.timeScale = 0.05
        try await withSimulator(config) { sim in
            let token = try await sim.login()
            let clock = ContinuousClock()
            let start = clock.now
            _ = try await sim.post("/api/vm/gpio", #"{"type":"power","duration":8000}"#, token: token)
            let elapsed = clock.now - start
            #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(3))
            #expect(await sim.state().poweredOn == false)
            // Reset on a powered-off host changes nothing.
            _ = try await sim.post("/api/vm/gpio", #"{"type":"reset"}"#, token: token)
            #expect(await sim.state().poweredOn == false)
        }
    }

    @Test func legacyLEDRoute() async throws {
        try await withSimulator(.fast(.legacy)) { sim in
            let token = try await sim.login()
            #expect(try await sim.get("/api/vm/gpio/led", token: token).json?["data"]?["pwr"] == true)
            #expect(try await sim.get("/api/vm/gpio", token: token).status == 404)
        }
    }

    @Test func pasteTypesWithRealTiming() async throws {
        var config = SimulatorConfiguration.fast()
        config.timeScale = 1
        try await withSimulator(config) { sim in
            let token = try await sim.login()
            sim.clearReports()
            let clock = ContinuousClock()
            let start = clock.now
            let response = try await sim.post("/api/hid/paste", #"{"content":"root\nLs é"}"#, token: token)
            #expect(response.json?["code"] == 0)
            // 8 typeable characters (é is skipped) × 30 ms.
            #expect(clock.now - start >= .milliseconds(240))
            let reports = sim.reports
            #expect(reports.count == 8 * 2 + 1)
            #expect(reports.allSatisfy { $0.source == .paste && $0.kind == .keyboard })
            #expect(reports[0].bytes == [0, 0, 0x15, 0, 0, 0, 0, 0])
            #expect(reports[10].bytes == [2, 0, 0x0F, 0, 0, 0, 0, 0])
            let downs = reports.filter { $0.bytes[2] != 0 }
            #expect(downs.count == 8)
            #expect(zip(downs, downs.dropFirst()).allSatisfy { $1.monotonicNanoseconds - $0.monotonicNanoseconds >= 25_000_000 })
            #expect(sim.consoleText.hasSuffix("nanokvm-sim login: root\nLs"))
        }
    }

    @Test func pasteLimitsPerGeneration() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            let tooLong = String(repeating: "a", count: 834)
            #expect(try await sim.post("/api/hid/paste", #"{"content":"\#(tooLong)"}"#, token: token).text
                == #"{"code":-2,"msg":"content too long","data":null}"#)
            #expect(try await sim.post("/api/hid/paste", #"{"content":""}"#, token: token).json?["code"] == -1)
        }
        try await withSimulator(.fast(.legacy)) { sim in
            let token = try await sim.login()
            // ≤2.4.3 counts UTF-8 bytes: 513 × "é" = 1026 bytes.
            let bytes = String(repeating: "é", count: 513)
            #expect(try await sim.post("/api/hid/paste", #"{"content":"\#(bytes)"}"#, token: token).json?["code"] == -2)
            sim.clearReports()
            #expect(try await sim.post("/api/hid/paste", #"{"content":"A"}"#, token: token).json?["code"] == 0)
            // 2.0.x sends an extra Left-Shift report and an extra key-up for shifted characters.
            #expect(sim.reports.map(\.bytes) == [[0, 0, 0xE1, 0, 0, 0, 0, 0], [2, 0, 4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]])
            #expect(sim.consoleText.hasSuffix("login: A"))
        }
    }

    @Test func pasteLanguagesAgainstHostLayouts() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            // German key positions on a US host: z and y swap.
            _ = try await sim.post("/api/hid/paste", #"{"content":"zy","langue":"de"}"#, token: token)
            #expect(sim.consoleText.hasSuffix("login: yz"))
            sim.setHostLayout(.de)
            _ = try await sim.post("/api/hid/paste", #"{"content":" zy@ä","langue":"de"}"#, token: token)
            #expect(sim.consoleText.hasSuffix("login: yz zy@ä"))
            sim.setHostLayout(.fr)
            _ = try await sim.post("/api/hid/paste", #"{"content":" azé","langue":"fr"}"#, token: token)
            #expect(sim.consoleText.hasSuffix(" azé"))
        }
    }

    @Test func imagesMountCdromUnmountDelete() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            let list = try await sim.get("/api/storage/image", token: token)
            let files = (list.json?["data"]?["files"]?.arrayValue ?? []).compactMap { $0.stringValue }
            #expect(files.contains("/data/ubuntu-24.04-desktop-amd64.iso"))
            #expect(try await sim.get("/api/storage/image/mounted", token: token).text == #"{"code":0,"msg":"success","data":{"file":""}}"#)
            _ = try await sim.post("/api/storage/image/mount", #"{"file":"/data/ubuntu-24.04-desktop-amd64.iso","cdrom":true}"#, token: token)
            #expect(try await sim.get("/api/storage/cdrom", token: token).json?["data"]?["cdrom"] == 1)
            // A disk mount without cdrom keeps the CD-ROM flags.
            _ = try await sim.post("/api/storage/image/mount", #"{"file":"/data/memtest86.IMG"}"#, token: token)
            #expect(try await sim.get("/api/storage/cdrom", token: token).json?["data"]?["cdrom"] == 1)
            #expect(try await sim.get("/api/storage/image/mounted", token: token).json?["data"]?["file"]?.stringValue == "/data/memtest86.IMG")
            _ = try await sim.post("/api/storage/image/mount", #"{"file":""}"#, token: token)
            #expect(try await sim.get("/api/storage/cdrom", token: token).json?["data"]?["cdrom"] == 0)
            #expect(try await sim.post("/api/storage/image/mount", #"{"file":"/data/missing.iso"}"#, token: token).json?["code"] == -2)
            #expect(try await sim.post("/api/storage/image/delete", #"{"file":"/etc/passwd"}"#, token: token).json?["code"] == -2)
            #expect(try await sim.post("/api/storage/image/delete", #"{"file":"/data/memtest86.IMG"}"#, token: token).json?["code"] == 0)
            #expect(try await sim.post("/api/storage/image/delete", #"{"file":"/data/memtest86.IMG"}"#, token: token).json?["code"] == -3)
            // No mass-storage function: mounting fails.
            _ = try await sim.post("/api/vm/device/virtual", #"{"device":"disk"}"#, token: token)
            #expect(try await sim.post("/api/storage/image/mount", #"{"file":"/data/freedos/FD14-FullUSB.img"}"#, token: token).json?["code"] == -2)
        }
    }

    @Test func virtualDevicesToggle() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            #expect(try await sim.get("/api/vm/device/virtual", token: token).text
                == #"{"code":0,"msg":"success","data":{"network":true,"media":false,"disk":true}}"#)
            #expect(try await sim.post("/api/vm/device/virtual", #"{"device":"network"}"#, token: token).json?["data"]?["on"] == false)
            #expect(try await sim.post("/api/vm/device/virtual", #"{"device":"network"}"#, token: token).json?["data"]?["on"] == true)
            #expect(try await sim.post("/api/vm/device/virtual", #"{"device":"cdrom"}"#, token: token).json?["code"] == -2)
            #expect(try await sim.post("/api/vm/device/virtual", "{}", token: token).json?["code"] == -1)
        }
    }

    @Test func settingsRoundTrip() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            #expect(try await sim.get("/api/vm/web-title", token: token).json?["code"] == -1)
            #expect(try await sim.post("/api/vm/web-title", #"{"title":""}"#, token: token).json?["code"] == -2)
            _ = try await sim.post("/api/vm/web-title", #"{"title":"Rack 4"}"#, token: token)
            #expect(try await sim.get("/api/vm/web-title", token: token).json?["data"]?["title"]?.stringValue == "Rack 4")
            _ = try await sim.post("/api/vm/screen", #"{"type":"fps","value":100}"#, token: token)
            #expect(await sim.state().fps == 60)
            #expect(try await sim.post("/api/vm/screen", #"{"type":"zoom","value":1}"#, token: token).json?["code"] == -2)
            #expect(try await sim.post("/api/vm/mouse-jiggler/", #"{"enabled":false}"#, token: token).json?["code"] == -2)
            #expect(try await sim.get("/api/vm/autostart", token: token).json?["code"] == -1)
            #expect(try await sim.post("/api/vm/autostart/boot.sh", #"{"content":"echo hi"}"#, token: token).text
                == #"{"code":0,"msg":"success","data":"boot.sh"}"#)
            #expect(try await sim.get("/api/vm/autostart/boot.sh", token: token).json?["data"]?.stringValue == "echo hi")
            #expect(try await sim.get("/api/vm/script", token: token).text == #"{"code":0,"msg":"success","data":{"files":null}}"#)
            #expect(try await sim.get("/api/application/version", token: token).json?["code"] == -1)
            #expect(try await sim.get("/api/hid/shortcuts", token: token).text == #"{"code":0,"msg":"success","data":{"shortcuts":[]}}"#)
            #expect(try await sim.post("/api/network/wol", #"{"mac":"aa-bb-cc-dd-ee-ff"}"#, token: token).json?["code"] == 0)
            #expect(try await sim.get("/api/network/wol/mac", token: token).json?["data"]?["macs"] == ["AA:BB:CC:DD:EE:FF"])
            #expect(try await sim.post("/api/network/wol", #"{"mac":"zz"}"#, token: token).json?["code"] == -2)
            #expect(try await sim.post("/api/network/dns", #"{"mode":"manual","servers":["1.1.1.1","::1","bad"]}"#, token: token).json?["code"] == -2)
            _ = try await sim.post("/api/extensions/tailscale/install", nil, token: token)
            let login = try await sim.post("/api/extensions/tailscale/login", nil, token: token)
            #expect(login.json?["data"]?["url"]?.stringValue?.hasPrefix("https://") == true)
            #expect(try await sim.get("/api/extensions/tailscale/status", token: token).json?["data"]?["state"]?.stringValue == "running")
            #expect(try await sim.get("/api/hid/mode", token: token).json?["data"]?["mode"]?.stringValue == "normal")
        }
    }

    @Test func scriptUploadRunDelete() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"hello.sh\"\r\n"
                + "Content-Type: application/octet-stream\r\n\r\necho hello\n\r\n--XyZ--\r\n"
            let upload = try await sim.post("/api/vm/script/upload", body, token: token, contentType: "multipart/form-data; boundary=XyZ")
            #expect(upload.text == #"{"code":0,"msg":"success","data":{"file":"hello.sh"}}"#)
            #expect(try await sim.get("/api/vm/script", token: token).json?["data"]?["files"] == ["hello.sh"])
            let badName = body.replacingOccurrences(of: "hello.sh", with: "hello.exe")
            #expect(try await sim.post("/api/vm/script/upload", badName, token: token, contentType: "multipart/form-data; boundary=XyZ").json?["code"] == -2)
            #expect(try await sim.post("/api/vm/script/upload", "{}", token: token).json?["code"] == -1)
            let run = try await sim.post("/api/vm/script/run", #"{"name":"hello.sh","type":"background"}"#, token: token)
            #expect(run.text == #"{"code":0,"msg":"success","data":{"log":""}}"#)
            #expect(try await withConnection(sim.port) { try await $0.request("DELETE", "/api/vm/script", body: #"{"name":"hello.sh"}"#, cookie: token) }.json?["code"] == 0)
            #expect(try await withConnection(sim.port) { try await $0.request("DELETE", "/api/vm/script", body: #"{"name":"hello.sh"}"#, cookie: token) }.json?["code"] == -3)
        }
    }

    @Test func legacyDetectToggle() async throws {
        try await withSimulator(.fast(.legacy)) { sim in
            let token = try await sim.login()
            #expect(try await sim.get("/api/stream/mjpeg/detect", token: token).json?["data"]?["enabled"] == false)
            #expect(try await sim.post("/api/stream/mjpeg/detect", nil, token: token, contentType: nil).json?["data"]?["enabled"] == true)
            #expect(try await sim.post("/api/stream/mjpeg/detect", nil, token: token, contentType: nil).json?["data"]?["enabled"] == false)
            #expect(try await sim.get("/api/storage/images/mounted", token: token).json?["data"]?["file"] == "")
        }
    }
}
