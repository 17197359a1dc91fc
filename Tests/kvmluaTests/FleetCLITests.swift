// Fleets (issue 14): one script on many devices. Twenty simulators run in the test process, each
// on its own loopback port; kvmlua runs as a subprocess against a config file whose profiles and
// group name them, and each simulator is asked afterwards what it received.

import Foundation
import FoundationXML
import NanoKVMSimulator
import Testing

private let fleetSize = 20

/// `count` simulators of `generation`, started concurrently.
private func startFleet(_ count: Int = fleetSize, generation: SimulatorGeneration = .current) async throws -> [NanoKVMSimulator] {
    try await withThrowingTaskGroup(of: (Int, NanoKVMSimulator).self) { group in
        for index in 0..<count {
            group.addTask {
                let simulator = NanoKVMSimulator(configuration: .fast(generation))
                try await simulator.start()
                return (index, simulator)
            }
        }
        var started: [(Int, NanoKVMSimulator)] = []
        for try await item in group { started.append(item) }
        return started.sorted { $0.0 < $1.0 }.map(\.1)
    }
}

/// What each host's console shows before a run (its banner and prompt): what a run types follows it.
private func transcripts(_ simulators: [NanoKVMSimulator]) async -> [String] {
    var texts: [String] = []
    for simulator in simulators { texts.append(await simulator.state().transcript) }
    return texts
}

private func stopFleet(_ simulators: [NanoKVMSimulator]) {
    Task { for simulator in simulators { await simulator.stop() } }
}

/// `lab-01` … `lab-20`.
private func name(_ index: Int) -> String { String(format: "lab-%02d", index + 1) }

/// A config file with one profile per simulator, group `lab` of all of them, plus `extra` group members.
private func writeFleetConfig(_ box: Sandbox, _ simulators: [NanoKVMSimulator], extraMembers: [String] = []) throws {
    var text = "return {\n  profiles = {\n"
    for (index, simulator) in simulators.enumerated() {
        text += "    ['\(name(index))'] = { url = '\(simulator.baseURL)', password = 'admin' },\n"
    }
    text += "  },\n  groups = { lab = { 'lab-*'"
    for member in extraMembers { text += ", '\(member)'" }
    text += " } },\n}\n"
    let path = box.home + "/.config/kvmlua/config.lua"
    try box.write(path, text)
    try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
}

/// Polls until `condition` holds for every simulator.
private func eventually(_ simulators: [NanoKVMSimulator], seconds: Double = 10, _ condition: (SimulatorInputState) -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        var all = true
        for simulator in simulators where !condition(await simulator.state().input) {
            all = false
            break
        }
        if all { return true }
        try? await Task.sleep(nanoseconds: 50_000_000)
    }
    return false
}

@Suite("fleets: one script on many devices", .tags(.kvmluaAddition), .serialized, .timeLimit(.minutes(3)))
struct FleetCLITests {
    @Test("20 devices: each receives exactly its own run's text; globals and libraries do not leak; {device} paths")
    func ownTextAndGlobals() async throws {
        let simulators = try await startFleet()
        defer { stopFleet(simulators) }
        let box = try Sandbox()
        try writeFleetConfig(box, simulators)
        try box.write(
            "fleet.lua",
            """
            local me = dev.name
            assert(mine == nil, "a global of another run is visible: " .. tostring(mine))
            mine = me
            if me == "lab-01" then string.upper = nil; print = nil; kvm.sleep = nil end
            if me ~= "lab-01" then
              kvm.sleep(0.05)
              assert(mine == me, "global changed by another run")
              assert(string.upper("x") == "X", "string library broken by another run")
              print("hello " .. me, ...)
            end
            dev:type("run of " .. me .. "\\n")
            dev:screenshot("shots/{device}.jpg")
            """)
        let before = await transcripts(simulators)
        let result = try await Runner(binary: .underTest, box: box).run(["--group", "lab", "fleet.lua", "x"], timeout: 60)
        #expect(result.status == .exited(0), "\(result)")
        for index in 0..<fleetSize {
            let transcript = await simulators[index].state().transcript
            #expect(transcript == before[index] + "run of \(name(index))\n", "\(name(index)) received \(transcript.debugDescription)")
            #expect(FileManager.default.fileExists(atPath: box.work + "/shots/\(name(index)).jpg"), "screenshot of \(name(index))")
            if index > 0 {
                #expect(result.stdout.contains("\(name(index)) | hello \(name(index))\tx\n"), "prefixed output of \(name(index))")
            }
        }
        #expect(result.stderr.contains("20 devices: 20 ok, 0 failed"), "\(result.stderr)")
        // The output is never mixed within a line: every line has a device prefix.
        for line in result.stdout.split(separator: "\n") {
            #expect(line.hasPrefix("lab-"), "unprefixed line: \(line)")
        }
    }

    @Test("an unreachable device fails alone with transport; exit 1; JUnit and JSON have one entry per device")
    func unreachableAndReports() async throws {
        let simulators = try await startFleet()
        defer { stopFleet(simulators) }
        let box = try Sandbox()
        try writeFleetConfig(box, simulators, extraMembers: ["http://127.0.0.1:1"])
        let before = await transcripts(simulators)
        let started = Date()
        let result = try await Runner(binary: .underTest, box: box).run(
            ["--group", "lab", "--junit", "results.xml", "--json", "results.json", "--output-dir", "logs",
             "-e", "dev:type(dev.name) print('typed on ' .. dev.name)"], timeout: 60)
        #expect(result.status == .exited(1), "\(result)")
        #expect(Date().timeIntervalSince(started) < 30, "the unreachable device fails within its connect timeout")
        #expect(result.stderr.contains("21 devices: 20 ok, 1 failed"), "\(result.stderr)")
        let summaryLine = result.stderr.split(separator: "\n").first { $0.hasPrefix("127.0.0.1:1 ") }
        #expect(summaryLine?.contains("transport") == true, "\(result.stderr)")
        for index in 0..<fleetSize {
            #expect(await simulators[index].state().transcript == before[index] + name(index))
            let log = (try? String(contentsOfFile: box.work + "/logs/\(name(index)).log", encoding: .utf8)) ?? ""
            #expect(log == "typed on \(name(index))\n", "log of \(name(index)): \(log.debugDescription)")
        }

        // JUnit: the common schema's shape (testsuites > testsuite > testcase [> failure]).
        let document = try XMLDocument(contentsOf: URL(fileURLWithPath: box.work + "/results.xml"))
        let root = try #require(document.rootElement())
        #expect(root.name == "testsuites")
        let suites = root.elements(forName: "testsuite")
        #expect(suites.count == 1)
        let suite = try #require(suites.first)
        for attribute in ["name", "tests", "failures", "errors", "time"] {
            #expect(suite.attribute(forName: attribute) != nil, "testsuite has \(attribute)")
        }
        #expect(suite.attribute(forName: "tests")?.stringValue == "21")
        #expect(suite.attribute(forName: "failures")?.stringValue == "1")
        let cases = suite.elements(forName: "testcase")
        #expect(cases.count == 21)
        #expect(Set(cases.compactMap { $0.attribute(forName: "name")?.stringValue }).count == 21)
        for testcase in cases {
            #expect(testcase.attribute(forName: "classname") != nil && testcase.attribute(forName: "time") != nil)
        }
        let failed = cases.filter { !$0.elements(forName: "failure").isEmpty }
        #expect(failed.map { $0.attribute(forName: "name")?.stringValue } == ["127.0.0.1:1"])
        let failure = try #require(failed.first?.elements(forName: "failure").first)
        #expect(failure.attribute(forName: "type")?.stringValue == "transport")
        #expect(failure.attribute(forName: "message")?.stringValue?.contains("connection refused") == true)
        let okCase = try #require(cases.first { $0.attribute(forName: "name")?.stringValue == "lab-03" })
        #expect(okCase.elements(forName: "system-out").first?.stringValue == "typed on lab-03\n")

        let data = try Data(contentsOf: URL(fileURLWithPath: box.work + "/results.json"))
        let objects = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        #expect(objects.count == 21)
        #expect(objects.filter { $0["ok"] as? Bool == true }.count == 20)
        let bad = objects.first { $0["device"] as? String == "127.0.0.1:1" }
        #expect(bad?["result"] as? String == "transport")
    }

    @Test("Ctrl-C mid-run: exit 1, no key or button held on any device (legacy firmware keeps them otherwise)")
    func interruptReleasesEverywhere() async throws {
        let simulators = try await startFleet(generation: .legacy)
        defer { stopFleet(simulators) }
        let box = try Sandbox()
        try writeFleetConfig(box, simulators)
        let session = try Runner(binary: .underTest, box: box).pty([
            "--group", "lab", "-e", "dev:key_down('shift') dev:mouse_down('left') print('held') kvm.sleep(60)",
        ])
        #expect(await eventually(simulators, seconds: 30) { $0.modifiers == 0x02 && $0.buttons == 0x01 }, "held on every host")
        session.sendControl("c")
        #expect(try await session.waitExit(timeout: 20) == .exited(1))
        #expect(
            await eventually(simulators) { $0.modifiers == 0 && $0.pressedKeys.isEmpty && $0.buttons == 0 },
            "released on every host")
    }

    @Test("a password asked at the terminal is asked once for the whole fleet")
    func onePasswordPrompt() async throws {
        let simulators = try await startFleet(3)
        defer { stopFleet(simulators) }
        let box = try Sandbox()
        let path = box.home + "/.config/kvmlua/config.lua"
        let profiles = simulators.enumerated().map { "['\(name($0.offset))'] = { url = '\($0.element.baseURL)' }" }
        try box.write(path, "return { profiles = { \(profiles.joined(separator: ", ")) } }")
        let session = try Runner(binary: .underTest, box: box).pty(["--device", "lab-*", "-e", "print('in ' .. dev.name)"])
        _ = try await session.expect("Password for admin at", timeout: 15)
        session.send("admin\r")
        let output = try await session.expect("3 devices: 3 ok", timeout: 20)
        #expect(try await session.waitExit(timeout: 10) == .exited(0))
        // `expect` consumed the first question: what follows it holds no second one.
        #expect(!output.contains("Password for"), "asked once: \(output)")
        #expect(!output.contains("admin\r\n"), "the password is not echoed")
    }

    @Test("kvm.devices connects a group in parallel; --limit bounds the runs at once; --sim N")
    func devicesFromAScript() async throws {
        let simulators = try await startFleet()
        defer { stopFleet(simulators) }
        let box = try Sandbox()
        try writeFleetConfig(box, simulators)
        let runner = Runner(binary: .underTest, box: box)
        let before = await transcripts(simulators)
        let script = try await runner.run(
            ["-e",
             """
             local list = kvm.devices('lab')
             assert(#list == 20, #list)
             kvm.parallel(list, function(d) d:type(d.name) end)
             print(list[1].name, list[20].name)
             local ok, err = pcall(kvm.devices, {'lab-01', 'http://127.0.0.1:1'})
             print(ok, err.kind, err.msg:match('^[^:]+'))
             local some, failures = kvm.devices({'lab-02', 'http://127.0.0.1:1'}, {partial = true})
             print(#some, failures['127.0.0.1:1'].kind)
             print(pcall(kvm.devices, 'nothing-*'))
             """], timeout: 60)
        #expect(script.status == .exited(0), "\(script)")
        let lines = script.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "lab-01\tlab-20", "\(script)")
        #expect(lines.dropFirst().first == "false\ttransport\t127.0.0.1", "\(script)")
        #expect(lines.dropFirst(2).first == "1\ttransport", "\(script)")
        #expect(lines.dropFirst(3).first?.hasPrefix("false\tkvm: 'nothing-*' matches no profile") == true, "\(script)")
        for index in 0..<fleetSize {
            let transcript = await simulators[index].state().transcript
            // lab-01 and lab-02 are also typed to by the later connections: only the first text counts.
            #expect(transcript.hasPrefix(before[index] + name(index)), "\(name(index)): \(transcript.debugDescription)")
        }

        // --limit 3: never more than three runs at once (each run notes the others running).
        let limited = try await runner.run(
            ["--group", "lab", "--limit", "3", "-e",
             "local f = io.open('running.' .. dev.name, 'w') f:close() kvm.sleep(0.1) local n = 0 "
                + "for name in io.popen('ls'):lines() do if name:find('^running') then n = n + 1 end end "
                + "os.remove('running.' .. dev.name) print(n)"], timeout: 60)
        #expect(limited.status == .exited(0), "\(limited)")
        let counts = limited.stdout.split(separator: "\n").compactMap { Int($0.split(separator: "|").last?.trimmingCharacters(in: .whitespaces) ?? "") }
        #expect(counts.count == 20 && counts.allSatisfy { $0 <= 3 } && counts.contains(3), "\(limited.stdout)")

        let sims = try await runner.run(["--sim", "3", "-e", "print(dev.name)"], timeout: 60)
        #expect(sims.status == .exited(0), "\(sims)")
        #expect(Set(sims.stdout.split(separator: "\n")) == ["sim-1  | sim-1", "sim-2  | sim-2", "sim-3  | sim-3"], "\(sims)")

        // os.exit ends one run: 0 is success, anything else fails that device only.
        let exits = try await runner.run(["--sim", "2", "-e", "if dev.name == 'sim-2' then os.exit(3) end os.exit(0)"], timeout: 60)
        #expect(exits.status == .exited(1), "\(exits)")
        #expect(exits.stderr.contains("2 devices: 1 ok, 1 failed"), "\(exits)")
        #expect(exits.stderr.split(separator: "\n").contains { $0.hasPrefix("sim-2 ") && $0.contains("exit") && $0.contains("os.exit(3)") }, "\(exits)")

        // --play on every device of the group.
        try box.write("login.kvm-macro", "0 type \"root\\n\"\n")
        let afterScript = await transcripts(simulators)
        let played = try await runner.run(["--group", "lab", "--play", "login.kvm-macro"], timeout: 60)
        #expect(played.status == .exited(0), "\(played)")
        for index in 0..<fleetSize {
            #expect(await simulators[index].state().transcript == afterScript[index] + "root\n", "--play on \(name(index))")
        }

        let bad = try await runner.run(["--group", "nope", "-e", "print(1)"])
        #expect(bad.status == .exited(1))
        #expect(bad.stderr.contains("no group 'nope'") && bad.stderr.contains("groups: lab"), "\(bad)")
        let repl = try await runner.run(["--group", "lab", "-i"])
        #expect(repl.status == .exited(1) && repl.stderr.contains("several devices need a script"), "\(repl)")
    }
}
