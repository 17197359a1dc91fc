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

@Suite("config file, profiles, passwords and tokens", .tags(.kvmluaAddition))
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
