// Keyboard state across the process's end: Ctrl-C, os.exit and errors leave no key pressed;
// --play plays a macro file; dev:live forwards the terminal's keys. The simulator runs in the
// test process in the legacy generation, whose devices (≤2.4.0) keep keys pressed when the
// WebSocket closes: only kvmlua's own releasing can clear them.

import Foundation
import NanoKVMSimulator
import Testing

private func legacySimulator() async throws -> NanoKVMSimulator {
    let simulator = NanoKVMSimulator(configuration: .fast(.legacy))
    try await simulator.start()
    return simulator
}

private func connectCode(_ simulator: NanoKVMSimulator) -> String {
    "d = kvm.connect('\(simulator.baseURL)', {password = 'admin'})"
}

/// Polls the simulator until `condition` holds (reports arrive a moment after they are sent).
private func eventually(_ simulator: NanoKVMSimulator, seconds: Double = 5, _ condition: (SimulatorInputState) -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition(await simulator.state().input) { return true }
        try? await Task.sleep(nanoseconds: 50_000_000)
    }
    return condition(await simulator.state().input)
}

@Suite("keyboard and mouse from the command line", .tags(.kvmluaAddition), .serialized, .timeLimit(.minutes(1)))
struct InputCLITests {
    @Test("Ctrl-C while a script holds keys and buttons: exit 1, nothing stays pressed")
    func ctrlCReleases() async throws {
        let simulator = try await legacySimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        let s = try Runner(binary: .underTest, box: box).pty([
            "-e", connectCode(simulator) + " d:key_down('shift') d:mouse_down('left') print('held') kvm.sleep(30)",
        ])
        _ = try await s.expect("held", timeout: 15)
        #expect(await eventually(simulator) { $0.modifiers == 0x02 && $0.buttons == 0x01 }, "held on the host")
        s.sendControl("c")
        #expect(try await s.waitExit(timeout: 10) == .exited(1))
        #expect(await eventually(simulator) { $0.modifiers == 0 && $0.pressedKeys.isEmpty && $0.buttons == 0 }, "released")
    }

    @Test("os.exit and an uncaught error while keys are held: released")
    func exitReleases() async throws {
        let simulator = try await legacySimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let exited = try await runner.run(["-e", connectCode(simulator) + " d:key_down('ctrl+KeyA') os.exit(0)"], timeout: 20)
        #expect(exited.status == .exited(0), "\(exited)")
        #expect(await eventually(simulator) { $0.modifiers == 0 && $0.pressedKeys.isEmpty })
        let failed = try await runner.run(["-e", connectCode(simulator) + " d:key_down('alt') error('stop')"], timeout: 20)
        #expect(failed.status == .exited(1))
        #expect(await eventually(simulator) { $0.modifiers == 0 && $0.pressedKeys.isEmpty })
    }

    @Test("--play FILE plays a macro on --device and exits")
    func play() async throws {
        let simulator = try await legacySimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        try box.write("login.kvm-macro", "# log in\n0 type \"root\\n\"\n0.1 key KeyX\n")
        let result = try await Runner(binary: .underTest, box: box).run(
            ["--device", simulator.baseURL, "--play", "login.kvm-macro"], env: ["NANOKVM_PASSWORD": "admin"], timeout: 20)
        #expect(result == Outcome(stdout: "", stderr: "", status: .exited(0)), "\(result)")
        #expect(await simulator.state().transcript.hasSuffix("root\nx"))
        try box.write("bad.kvm-macro", "0 key enter\nnot a step\n")
        let bad = try await Runner(binary: .underTest, box: box).run(
            ["--device", simulator.baseURL, "--play", "bad.kvm-macro"], env: ["NANOKVM_PASSWORD": "admin"], timeout: 20)
        #expect(bad.status == .exited(1))
        #expect(bad.stderr.contains("bad.kvm-macro:2: a step starts with its time offset"), "\(bad.stderr)")
    }

    @Test("dev:live forwards typed keys until Ctrl-] and can record them")
    func live() async throws {
        let simulator = try await legacySimulator()
        defer { Task { await simulator.stop() } }
        let box = try Sandbox()
        let s = try Runner(binary: .underTest, box: box).pty(["-i", "-e", connectCode(simulator)])
        _ = try await s.readUntilPrompt(timeout: 15)
        s.send("m = d:live{record = true}\r")
        _ = try await s.expect("leaves", timeout: 10)
        for chunk in ["ab", "\r", "\u{1B}[A", "c"] {
            s.send(chunk)
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        s.send("\u{1D}")
        _ = try await s.expect("ended", timeout: 10)
        _ = try await s.readUntilPrompt(timeout: 10)
        #expect(await simulator.state().transcript.hasSuffix("ab\nc"))
        let steps = try await s.line("#m", timeout: 10)
        #expect(steps == "5\n", "\(debugQuote(steps))")
        s.sendControl("d")
        #expect(try await s.waitExit(timeout: 10) == .exited(0))
    }
}
