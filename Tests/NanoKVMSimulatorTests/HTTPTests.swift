// The HTTP layer of the simulated device against §12.1–14: envelopes, 401/403/404 shapes,
// redirects, request binding quirks, login variants and their delays, sessions.

import Foundation
import NanoKVM
import Testing
@testable import NanoKVMSimulator

@Suite(.timeLimit(.minutes(1))) struct HTTPTests {
    @Test func envelopeHasExactKeysTypeAndLength() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            let response = try await sim.get("/api/vm/info", token: token)
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "application/json; charset=utf-8")
            #expect(response.header("Content-Length") == String(response.body.count))
            #expect(response.header("Date")?.hasSuffix(" GMT") == true)
            #expect(response.text.hasPrefix(#"{"code":0,"msg":"success","data":{"ips":[{"name":"eth0","addr":"127.0.0.1","version":"IPv4","type":"Wired"}],"mdns":"#))
            #expect(response.json?["data"]?["application"]?.stringValue == "2.5.1")
            // Go writes header fields sorted by name.
            #expect(response.headers.map(\.0) == ["Content-Length", "Content-Type", "Date"])
        }
    }

    @Test func unauthorizedIsABareJSONString() async throws {
        try await withSimulator { sim in
            let response = try await sim.get("/api/vm/info", token: nil)
            #expect(response.status == 401)
            #expect(response.text == #""unauthorized""#)
            #expect(response.header("Content-Type") == "application/json; charset=utf-8")
            let forged = try await sim.get("/api/vm/info", token: "eyJhbGciOiJIUzI1NiJ9.e30.AAAA")
            #expect(forged.status == 401)
        }
    }

    @Test func notFoundBeforeAuthenticationAndForWrongMethods() async throws {
        try await withSimulator { sim in
            for (method, path) in [("GET", "/api/nothing"), ("DELETE", "/api/vm/info"), ("HEAD", "/api/vm/info"), ("GET", "/api/storage/images")] {
                let response = try await withConnection(sim.port) { try await $0.request(method, path, head: method == "HEAD") }
                #expect(response.status == 404, "\(method) \(path)")
                if method != "HEAD" {
                    #expect(response.text == "404 page not found")
                    #expect(response.header("Content-Type") == "text/plain")
                }
            }
            // The inspection routes do not exist unless enabled.
            var config = SimulatorConfiguration.fast()
            config.inspection = false
            let status = try await withSimulator(config) { plain in
                try await plain.get("/__sim/state", token: nil).status
            }
            #expect(status == 404)
        }
    }

    @Test func trailingSlashRedirects() async throws {
        try await withSimulator { sim in
            let post = try await sim.post("/api/vm/mouse-jiggler", #"{"enabled":true}"#, token: nil)
            #expect(post.status == 307)
            #expect(post.header("Location") == "/api/vm/mouse-jiggler/")
            let get = try await sim.get("/api/vm/info/", token: nil)
            #expect(get.status == 301)
            #expect(get.header("Location") == "/api/vm/info")
        }
    }

    @Test func forbiddenForUserRoleOnAdminRoutes() async throws {
        var config = SimulatorConfiguration.fast()
        config.users = [SimulatorUser(username: "viewer", password: "viewer-pass", role: .user)]
        try await withSimulator(config) { sim in
            let token = try await sim.login(username: "viewer", password: "viewer-pass")
            let denied = try await sim.get("/api/storage/image", token: token)
            #expect(denied.status == 403)
            #expect(denied.text == #""forbidden""#)
            #expect(try await sim.get("/api/vm/info", token: token).status == 200)
            let account = try await sim.get("/api/auth/account", token: token)
            #expect(account.text == #"{"code":0,"msg":"success","data":{"username":"viewer","role":"user"}}"#)
        }
    }

    @Test func goStyleEscaping() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            #expect(try await sim.post("/api/vm/hostname", #"{"hostname":"<a&b>"}"#, token: token).json?["code"] == 0)
            let response = try await sim.get("/api/vm/hostname", token: token)
            #expect(response.text == #"{"code":0,"msg":"success","data":{"hostname":"\u003ca\u0026b\u003e"}}"#)
        }
    }

    @Test func bindingQuirks() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            // Keys match case-insensitively.
            #expect(try await sim.post("/api/vm/gpio", #"{"TYPE":"reset","Duration":1}"#, token: token).json?["code"] == 0)
            // Without a JSON content type the body is a form: fields by Go name, here from the query.
            #expect(try await sim.post("/api/vm/gpio?Type=reset&Duration=1", "", token: token, contentType: nil).json?["code"] == 0)
            // An empty JSON body fails to parse.
            let empty = try await sim.post("/api/vm/gpio", "", token: token)
            #expect(empty.json?["code"] == -1)
            #expect(empty.json?["msg"]?.stringValue == "invalid arguments: EOF")
            // A type mismatch is reported like encoding/json does.
            let wrongType = try await sim.post("/api/vm/gpio", #"{"type":"power","duration":"800"}"#, token: token)
            #expect(wrongType.json?["msg"]?.stringValue?.hasPrefix("invalid arguments: json: cannot unmarshal string") == true)
            let unknown = try await sim.post("/api/vm/gpio", #"{"type":"sleep"}"#, token: token)
            #expect(unknown.text == #"{"code":-2,"msg":"invalid power event: sleep","data":null}"#)
            // detect with no body and no content type = enabled:false on ≥2.2.3.
            #expect(try await sim.post("/api/stream/mjpeg/detect", #"{"enabled":true}"#, token: token).json?["code"] == 0)
            #expect(await sim.state().frameDetect)
            #expect(try await sim.post("/api/stream/mjpeg/detect", nil, token: token, contentType: nil).json?["code"] == 0)
            #expect(await sim.state().frameDetect == false)
        }
    }

    @Test func currentLoginSetsTheCookieOnly() async throws {
        try await withSimulator { sim in
            let body = #"{"username":"admin","password":"\#(NanoKVMSimulator.obfuscate("admin"))"}"#
            let response = try await sim.post("/api/auth/login", body, token: nil)
            #expect(response.text == #"{"code":0,"msg":"success","data":null}"#)
            let cookie = try #require(response.header("Set-Cookie"))
            #expect(cookie.hasPrefix("nano-kvm-token=ey"))
            #expect(cookie.hasSuffix("; Path=/; Max-Age=2678400; HttpOnly; SameSite=Strict"))
            #expect(await sim.state().loginCount == 1)
        }
    }

    @Test func legacyLoginPutsTheTokenInTheBody() async throws {
        try await withSimulator(.fast(.legacy)) { sim in
            let body = #"{"username":"admin","password":"\#(NanoKVMSimulator.obfuscate("admin"))"}"#
            let response = try await sim.post("/api/auth/login", body, token: nil)
            #expect(response.header("Set-Cookie") == nil)
            let token = try #require(response.json?["data"]?["token"]?.stringValue)
            let info = try await sim.get("/api/vm/info", token: token)
            #expect(info.json?["data"]?["firmware"]?.stringValue == "2.0.9")
            #expect(info.json?["data"]?["ip"]?.stringValue == "127.0.0.1")
            let wrong = try await sim.post("/api/auth/login", #"{"username":"admin","password":"admin"}"#, token: nil)
            #expect(wrong.json?["code"] == -4)
            #expect(try await sim.post("/api/auth/logout", nil, token: token).status == 404)
        }
    }

    @Test func passwordFieldVariants() async throws {
        try await withSimulator { sim in
            func login(_ field: String) async throws -> RawResponse {
                try await sim.post("/api/auth/login", #"{"username":"admin","password":"\#(field)"}"#, token: nil)
            }
            // Plain text decodes to nothing: wrong password.
            #expect(try await login("admin").json?["code"] == -2)
            // openssl's base64 without URL encoding fails when it contains '+' (it becomes a space;
            // Go's base64 keeps the bytes before it, here fewer than the 16-byte header).
            var plus = ""
            for n in 0..<256 {
                let candidate = DeviceCrypto.encrypt("admin", salt: [UInt8(n), 1, 2, 3, 4, 5, 6, 7], urlEncoded: false)
                if let index = candidate.firstIndex(of: "+"), candidate.distance(from: candidate.startIndex, to: index) < 20 {
                    plus = candidate
                    break
                }
            }
            #expect(!plus.isEmpty)
            #expect(try await login(plus).json?["code"] == -2)
            #expect(try await login(plus.replacingOccurrences(of: "+", with: "%2B")).json?["code"] == 0)
            // A salted blob whose ciphertext is not whole blocks makes the Go decryptor panic.
            let panic = try await login("U2FsdGVkX18AAQIDBAUGBwAB")
            #expect(panic.status == 500)
            #expect(panic.body.isEmpty)
            #expect(await sim.state().failedLoginCount == 2)
        }
    }

    @Test func loginDelaysAreScaled() async throws {
        // The device's delays at scale 1 (−2 after 2 s, −1 after 3 s) and at scale 0.1, all
        // requests at once. Only lower bounds and an ordering are asserted: the whole test
        // suite shares two cores, so no absolute upper bound holds.
        func timedLogin(_ sim: NanoKVMSimulator, _ body: String) async throws -> (Int?, Duration) {
            let clock = ContinuousClock()
            let start = clock.now
            let response = try await sim.post("/api/auth/login", body, token: nil)
            return (response.json?["code"]?.intValue, clock.now - start)
        }
        var real = SimulatorConfiguration.fast()
        real.loginDelayScale = 1
        var scaled = SimulatorConfiguration.fast()
        scaled.loginDelayScale = 0.1
        try await withSimulator(real) { sim in
            try await withSimulator(scaled) { fast in
                let good = #"{"username":"admin","password":"\#(NanoKVMSimulator.obfuscate("admin"))"}"#
                async let wrong = timedLogin(sim, #"{"username":"admin","password":"x"}"#)
                async let invalid = timedLogin(sim, "{}")
                async let success = timedLogin(sim, good)
                async let scaledWrong = timedLogin(fast, #"{"username":"admin","password":"x"}"#)
                let (wrongCode, wrongTime) = try await wrong
                let (invalidCode, invalidTime) = try await invalid
                let (successCode, successTime) = try await success
                let (scaledCode, scaledTime) = try await scaledWrong
                #expect(wrongCode == -2 && wrongTime >= .milliseconds(1990))
                #expect(invalidCode == -1 && invalidTime >= .milliseconds(2990))
                #expect(successCode == 0 && successTime < wrongTime)
                #expect(scaledCode == -2 && scaledTime >= .milliseconds(195) && scaledTime < wrongTime)
            }
        }
    }

    @Test func lockoutAfterTooManyFailures() async throws {
        var config = SimulatorConfiguration.fast()
        config.loginLockout = (maxFailures: 2, duration: .seconds(60))
        try await withSimulator(config) { sim in
            let bad = #"{"username":"admin","password":"\#(NanoKVMSimulator.obfuscate("nope"))"}"#
            #expect(try await sim.post("/api/auth/login", bad, token: nil).json?["code"] == -2)
            #expect(try await sim.post("/api/auth/login", bad, token: nil).json?["code"] == -2)
            let good = #"{"username":"admin","password":"\#(NanoKVMSimulator.obfuscate("admin"))"}"#
            let locked = try await sim.post("/api/auth/login", good, token: nil)
            #expect(locked.json?["code"] == -5)
            #expect(locked.json?["msg"]?.stringValue == "Account locked due to too many failed attempts, please try again later")
        }
    }

    @Test func logoutAndExpiryInvalidateTokens() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            let logout = try await sim.post("/api/auth/logout", nil, token: token)
            #expect(logout.header("Set-Cookie") == "nano-kvm-token=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
            #expect(try await sim.get("/api/vm/info", token: token).status == 401)
            let second = try await sim.login()
            #expect(try await sim.get("/api/vm/info", token: second).status == 200)
            sim.expireTokens()
            #expect(try await sim.get("/api/vm/info", token: second).status == 401)
        }
        // `exp` is whole seconds (truncated, as jwt-go does): a 3 s token lives 2–3 s.
        var short = SimulatorConfiguration.fast()
        short.tokenLifetime = .seconds(3)
        try await withSimulator(short) { sim in
            let token = try await sim.login()
            #expect(try await sim.get("/api/vm/info", token: token).status == 200)
            try await eventually("token expiry", timeout: 6) { (try? await sim.get("/api/vm/info", token: token).status) == 401 }
        }
    }

    @Test func authenticationDisabled() async throws {
        for generation in SimulatorGeneration.allCases {
            var config = SimulatorConfiguration.fast(generation)
            config.authenticationDisabled = true
            try await withSimulator(config) { sim in
                #expect(try await sim.get("/api/vm/info", token: nil).status == 200)
                let login = try await sim.post("/api/auth/login", "{}", token: nil)
                if generation == .legacy {
                    #expect(login.text == #"{"code":0,"msg":"success","data":{"token":"disabled"}}"#)
                } else {
                    #expect(login.text == #"{"code":0,"msg":"success","data":null}"#)
                    #expect(login.header("Set-Cookie") == nil)
                }
            }
        }
    }

    @Test func passwordChangeOnMain() async throws {
        try await withSimulator { sim in
            let token = try await sim.login()
            #expect(try await sim.get("/api/auth/password", token: token).json?["data"]?["isUpdated"] == false)
            let short = #"{"currentPassword":"\#(NanoKVMSimulator.obfuscate("admin"))","password":"\#(NanoKVMSimulator.obfuscate("short"))"}"#
            #expect(try await sim.post("/api/auth/password", short, token: token).json?["code"] == -5)
            let good = #"{"currentPassword":"\#(NanoKVMSimulator.obfuscate("admin"))","password":"\#(NanoKVMSimulator.obfuscate("long enough"))"}"#
            #expect(try await sim.post("/api/auth/password", good, token: token).json?["code"] == 0)
            #expect(try await sim.get("/api/vm/info", token: token).status == 401)
            let fresh = try await sim.login(password: "long enough")
            #expect(try await sim.get("/api/auth/password", token: fresh).json?["data"]?["isUpdated"] == true)
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct VersionSwitchTests {
    @Test func intermediateVersionsPickTheirSwitches() async throws {
        var config = SimulatorConfiguration.fast(.current)
        config.applicationVersion = "2.4.0"
        try await withSimulator(config) { sim in
            let login = try await sim.post(
                "/api/auth/login", #"{"username":"admin","password":"\#(NanoKVMSimulator.obfuscate("admin"))"}"#, token: nil)
            // ≤2.5.0: token in the body, no cookie.
            let token = try #require(login.json?["data"]?["token"]?.stringValue)
            #expect(login.header("Set-Cookie") == nil)
            // Probe table of §11.1: routes by version.
            #expect(try await sim.get("/api/hid/shortcuts", token: nil).status == 401)  // ≥2.3.2
            #expect(try await sim.get("/api/network/dns", token: nil).status == 404)  // ≥2.4.1
            #expect(try await sim.get("/api/auth/users", token: nil).status == 404)  // main only
            #expect(try await sim.get("/api/vm/info", token: token).json?["data"]?["application"]?.stringValue == "2.4.0")
            // No roles before main: every session may call admin routes.
            #expect(try await sim.get("/api/auth/account", token: token).text == #"{"code":0,"msg":"success","data":{"username":"admin"}}"#)
        }
        config.applicationVersion = "2.2.9"
        try await withSimulator(config) { sim in
            let token = try await sim.login()
            #expect(try await sim.get("/api/stream/mjpeg/detect", token: nil).status == 404)  // removed in 2.2.3
            #expect(try await sim.get("/api/hid/shortcuts", token: nil).status == 404)
            try await withConnection(sim.port) { conn in
                #expect(try await conn.upgrade(cookie: token).status == 101)
                try await conn.sendText("[1,5,2,0,0,0]")  // 2.1.3+ modifier bit values: Left Shift
                try await eventually("B typed") { sim.consoleText.hasSuffix("login: B") }
            }
        }
    }
}

extension TestConnection {
    func request(_ method: String, _ path: String, head: Bool) async throws -> RawResponse {
        try await send("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        return try await readResponse(head: head)
    }
}
