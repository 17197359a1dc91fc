// The config file, profiles, password sources, the token cache and where secrets must not
// appear, with the simulator running in the test process and kvmlua as a subprocess.

import Foundation
import NanoKVMSimulator
import Testing

/// A simulator on a free loopback port for one test.
private func startSimulator() async throws -> NanoKVMSimulator {
    let simulator = NanoKVMSimulator(configuration: .fast(.current))
    try await simulator.start()
    return simulator
}

private func writeConfig(_ box: Sandbox, _ text: String, mode: Int) throws -> String {
    let path = box.home + "/.config/kvmlua/config.lua"
    try box.write(path, text)
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    return path
}

private func mode(of path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

@Suite("config file, profiles, passwords and tokens", .tags(.kvmluaAddition), .timeLimit(.minutes(1)))
struct ConfigTests {
    @Test("profiles: kvm.profiles() never shows the password; kvm.connect and --device take a profile name")
    func profiles() async throws {
        let simulator = try await startSimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        _ = try writeConfig(
            box, "return { profiles = { lab = { url = '\(simulator.baseURL)', user = 'admin', password = 'admin' } } }", mode: 0o600)
        let runner = Runner(binary: .underTest, box: box)
        let listed = try await runner.run(["-e", "print(kvm.json.encode(kvm.profiles()))"])
        #expect(listed.stdout == "{\"lab\":{\"url\":\"\(simulator.baseURL)\",\"user\":\"admin\"}}\n", "\(listed)")
        let connected = try await runner.run(["-e", "print(kvm.connect('lab'):is_on())"])
        #expect(connected == Outcome(stdout: "true\n", stderr: "", status: .exited(0)))
        let device = try await runner.run(["--device", "lab", "-e", "print(dev.url)"])
        #expect(device == Outcome(stdout: simulator.baseURL + "\n", stderr: "", status: .exited(0)))
    }

    @Test("layouts: a profile's layout is dev.layout; --layout is the default of devices without one")
    func layouts() async throws {
        let simulator = try await startSimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        _ = try writeConfig(
            box, "return { profiles = { lab = { url = '\(simulator.baseURL)', password = 'admin', layout = 'ch(fr)' }, "
                + "plain = { url = '\(simulator.baseURL)', password = 'admin' } } }", mode: 0o600)
        let runner = Runner(binary: .underTest, box: box)
        let own = try await runner.run(["--layout", "gb", "--device", "lab", "-e", "print(dev.layout, kvm.connect('plain').layout)"])
        #expect(own == Outcome(stdout: "ch(fr)\tgb\n", stderr: "", status: .exited(0)), "\(own)")
        let bad = try await runner.run(["--layout", "klingon", "-e", "print(1)"])
        #expect(bad.status == .exited(1))
        #expect(bad.stderr.contains("--layout: unknown keyboard layout 'klingon'"), "\(bad)")
        _ = try writeConfig(
            box, "return { profiles = { lab = { url = '\(simulator.baseURL)', password = 'admin', layout = 'xx(yy)' } } }", mode: 0o600)
        let badProfile = try await runner.run(["-e", "kvm.connect('lab')"])
        #expect(badProfile.status == .exited(1))
        #expect(badProfile.stderr.contains("profile 'lab': unknown keyboard layout 'xx(yy)'"), "\(badProfile)")
    }

    @Test("without libxkbcommon: us, uk, de, fr still type; another layout names the Debian packages")
    func layoutsWithoutLibrary() async throws {
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let code = """
            local dev = kvm.sim { host_layout = "de", time_scale = 0, login_delay_scale = 0 }
            dev:type("Grüße é @{", { delay = 0 })
            kvm.sleep(0.3)
            print(dev:sim_state().transcript:match("login: (.*)$"), #kvm.layouts())
            local ok, err = pcall(dev.type, dev, "x", { layout = "ch(fr)" })
            print(err.kind, err.msg)
            """
        let result = try await runner.run(["-e", code], env: ["KVMLUA_NO_XKBCOMMON": "1"])
        #expect(result.status == .exited(0), "\(result)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.first == "Grüße é @{\t4", "\(result)")
        #expect(result.stdout.contains("usage\t"), "\(result)")
        #expect(result.stdout.contains("install the Debian packages libxkbcommon0 and xkb-data"), "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
    }

    @Test("a config holding a password that group or others can read is refused")
    func readableConfigRefused() async throws {
        let simulator = try await startSimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        let path = try writeConfig(
            box, "return { profiles = { lab = { url = '\(simulator.baseURL)', password = 'admin' } } }", mode: 0o644)
        let result = try await Runner(binary: .underTest, box: box).run(["-e", "kvm.connect('lab')"])
        #expect(result.status == .exited(1))
        #expect(result.stderr.contains("\(path) holds a password and can be read by group or others; run: chmod 600 \(path)"))
        #expect(!result.stderr.contains("admin'"))
        // Without a password in it, the same mode is fine.
        _ = try writeConfig(box, "return { profiles = { lab = { url = '\(simulator.baseURL)' } } }", mode: 0o644)
        let fine = try await Runner(binary: .underTest, box: box).run(
            ["-e", "print(kvm.connect('lab'):is_on())"], env: ["NANOKVM_PASSWORD": "admin"])
        #expect(fine.stdout == "true\n", "\(fine)")
    }

    @Test("password_cmd runs a command for the password")
    func passwordCommand() async throws {
        let simulator = try await startSimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        _ = try writeConfig(
            box, "return { profiles = { lab = { url = '\(simulator.baseURL)', password_cmd = 'printf admin' } } }", mode: 0o644)
        let result = try await Runner(binary: .underTest, box: box).run(["-e", "print(kvm.connect('lab'):is_on())"])
        #expect(result == Outcome(stdout: "true\n", stderr: "", status: .exited(0)))
        _ = try writeConfig(
            box, "return { profiles = { lab = { url = '\(simulator.baseURL)', password_cmd = 'exit 3' } } }", mode: 0o644)
        let failed = try await Runner(binary: .underTest, box: box).run(["-e", "kvm.connect('lab')"])
        #expect(failed.status == .exited(1))
        #expect(failed.stderr.contains("password_cmd of profile 'lab' failed (exit status 3)"), "\(failed.stderr)")
    }

    @Test("a bad config file is a clear usage error")
    func badConfig() async throws {
        let box = try Sandbox()
        _ = try writeConfig(box, "return { profiles = { lab = { url = 5 } } }", mode: 0o600)
        let result = try await Runner(binary: .underTest, box: box).run(["-e", "kvm.connect('lab')"])
        #expect(result.status == .exited(1))
        #expect(result.stderr.contains("profile 'lab': 'url' must be a string"), "\(result.stderr)")
    }

    @Test("the token is cached (0600) and reused by the next run without a password")
    func tokenCache() async throws {
        let simulator = try await startSimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let first = try await runner.run(["-e", "print(kvm.connect('\(simulator.baseURL)'):is_on())"], env: ["NANOKVM_PASSWORD": "admin"])
        #expect(first.stdout == "true\n", "\(first)")
        let directory = box.home + "/.cache/kvmlua/tokens"
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(files.count == 1)
        let tokenFile = directory + "/" + (files.first ?? "")
        #expect(try mode(of: tokenFile) == 0o600)
        #expect(try mode(of: directory) == 0o700)
        #expect(!(try String(contentsOfFile: tokenFile, encoding: .utf8)).contains("admin"), "no password in the token file")
        let logins = await simulator.state().loginCount
        let second = try await runner.run(["-e", "print(kvm.connect('\(simulator.baseURL)'):is_on())"], env: ["NANOKVM_PASSWORD": nil])
        #expect(second == Outcome(stdout: "true\n", stderr: "", status: .exited(0)))
        #expect(await simulator.state().loginCount == logins, "no new login: the cached token was used")
        // An explicit password always logs in.
        _ = try await runner.run(["-e", "kvm.connect('\(simulator.baseURL)', {password='admin'})"])
        #expect(await simulator.state().loginCount == logins + 1)
    }

    @Test("a password never appears in errors, the history file, or --help")
    func passwordsStayHidden() async throws {
        let simulator = try await startSimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let wrong = try await runner.run(["-e", "kvm.connect('\(simulator.baseURL)', {password='Hunter2-secret'})"])
        #expect(wrong.status == .exited(1))
        #expect(wrong.stderr.contains("kvm: POST /api/auth/login"), "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("Hunter2"))
        let help = try await runner.run(["--help"], env: ["NANOKVM_PASSWORD": "Hunter2-secret"])
        #expect(!help.stdout.contains("Hunter2") && !help.stderr.contains("Hunter2"))

        let s = try runner.pty()
        _ = try await s.readUntilPrompt()
        _ = try await s.line("d = kvm.connect('\(simulator.baseURL)', {password = 'admin'})")
        _ = try await s.line("failed = pcall(kvm.connect, '\(simulator.baseURL)', {password = 'Hunter2-secret'})")
        // No keyword here, but the text was used as a password: not saved either.
        _ = try await s.line("x = 'Hunter2-secret' .. ''")
        _ = try await s.line("ok = d:is_on()")
        s.sendControl("d")
        _ = try await s.waitExit()
        let history = try String(contentsOfFile: box.state + "/kvmlua/history", encoding: .utf8)
        #expect(history.contains("ok = d:is_on()"))
        #expect(!history.contains("Hunter2"), "the secret-looking line is kept out of the file")
        #expect(!history.contains("password"), "the connect line holds a password: not saved")
    }
}

/// `openssl s_server` with a fresh self-signed certificate on a free port: a TLS peer whose
/// certificate no authority vouches for, as a NanoKVM's.
private final class SelfSignedServer {
    let port: Int
    let fingerprint: String
    let process: Process
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvmlua-tls-" + UUID().uuidString).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        make.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/key.pem",
                          "-out", directory + "/cert.pem", "-days", "2", "-subj", "/CN=nanokvm"]
        make.standardError = FileHandle.nullDevice
        try make.run()
        make.waitUntilExit()
        let der = Process()
        der.executableURL = URL(fileURLWithPath: "/bin/sh")
        der.arguments = ["-c", "openssl x509 -in '\(directory)/cert.pem' -outform DER | sha256sum"]
        let pipe = Pipe()
        der.standardOutput = pipe
        try der.run()
        der.waitUntilExit()
        let hex = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64).uppercased()
        fingerprint = stride(from: 0, to: 64, by: 2).map { i in
            String(hex[hex.index(hex.startIndex, offsetBy: i)..<hex.index(hex.startIndex, offsetBy: i + 2)])
        }.joined(separator: ":")
        port = 20_000 + Int.random(in: 0..<20_000)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["s_server", "-accept", String(port), "-cert", directory + "/cert.pem", "-key", directory + "/key.pem", "-quiet"]
        process.standardInput = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 0.5)
    }

    deinit {
        // SIGKILL, not terminate(): the child inherits the test runner's blocked SIGTERM, and
        // s_server outlived every run before this.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite("TLS trust on first use (known_hosts)", .tags(.kvmluaAddition), .serialized, .timeLimit(.minutes(1)))
struct KnownHostsTests {
    @Test("an untrusted certificate: refused with its fingerprint without a terminal; asked, recorded and pinned on one; a changed one refused")
    func trustOnFirstUse() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else {
            Issue.record("openssl is not installed (scripts/setup --test installs it)")
            return
        }
        let server = try SelfSignedServer()
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let url = "https://127.0.0.1:\(server.port)"
        let connect = "kvm.connect('\(url)', {password='x', timeout=1})"

        let refused = try await runner.run(["-e", connect])
        #expect(refused.status == .exited(1))
        #expect(refused.stderr.contains("is not trusted (SHA-256 \(server.fingerprint))"), "\(refused.stderr)")

        let s = try runner.pty(["-e", connect])
        _ = try await s.expect("[y/N]", timeout: 10)
        s.send("y\r")
        _ = try await s.waitExit(timeout: 10)
        let knownHosts = box.state + "/kvmlua/known_hosts"
        let recorded = try String(contentsOfFile: knownHosts, encoding: .utf8)
        #expect(recorded == "127.0.0.1:\(server.port) SHA256 \(server.fingerprint)\n")
        #expect(try mode(of: knownHosts) == 0o600)

        // From now on the pin is used: TLS passes, so the failure is the (non-)device's answer.
        let pinned = try await runner.run(["-e", connect])
        #expect(!pinned.stderr.contains("not trusted") && !pinned.stderr.contains("changed"), "\(pinned.stderr)")

        try "127.0.0.1:\(server.port) SHA256 \(String(repeating: "00:", count: 31))00\n".write(
            toFile: knownHosts, atomically: true, encoding: .utf8)
        let changed = try await runner.run(["-e", connect])
        #expect(changed.stderr.contains("changed since it was trusted"), "\(changed.stderr)")
        #expect(changed.stderr.contains(knownHosts))
    }
}
