// Checks of the harness itself with /bin/sh, so a harness bug is not mistaken for a kvmlua bug.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing

@Suite("Harness self-checks", .timeLimit(.minutes(1)))
struct HarnessTests {

    @Test("the binary under test exists")
    func binaryExists() {
        #expect(FileManager.default.isExecutableFile(atPath: Binary.underTest.path),
                "no executable at \(Binary.underTest.path); build kvmlua or set KVMLUA_BIN")
    }

    @Test("pipe runner: stdout, stderr, merged order, exit code, signal, cwd, env, argv[0]")
    func pipes() async throws {
        let box = try Sandbox()
        let sh = Runner(binary: Binary(path: "/bin/sh"), box: box)
        let o = try await sh.run(["-c", "echo out; echo err >&2; cat; exit 7"], stdin: "in\n")
        #expect(o == Outcome(stdout: "out\nin\n", stderr: "err\n", status: .exited(7)))
        let m = try await sh.run(["-c", "echo 1; echo 2 >&2; echo 3"], merge: true)
        #expect(m.stdout == "1\n2\n3\n")
        let k = try await sh.run(["-c", "kill -TERM $$"])
        #expect(k.status == .signaled(SIGTERM))
        let e = try await sh.run(["-c", "pwd; echo \"$HOME|$LUA_INIT|$0\""], env: ["LUA_INIT": "x"], argv0: "myname")
        #expect(e.stdout == "\(box.work)\n\(box.home)|x|myname\n")
    }

    @Test("pipe runner: a hung child is killed at the deadline")
    func pipeTimeout() async throws {
        let box = try Sandbox()
        let start = ContinuousClock.now
        await #expect(throws: HarnessError.self) {
            _ = try await Runner(binary: Binary(path: "/bin/sleep"), box: box).run(["30"], timeout: 0.3)
        }
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test("pty: a terminal of 80x24 on 0/1/2, controlling terminal (Ctrl-C sends SIGINT)")
    func pty() async throws {
        let box = try Sandbox()
        let sh = Runner(binary: Binary(path: "/bin/sh"), box: box)
        let s = try sh.pty(["-c", "test -t 0 && test -t 1 && test -t 2 && echo tty; stty size; read x; echo got $x; exec sleep 30"])
        try await s.expect("tty\n24 80\n")
        s.send("hello\r")
        try await s.expect("got hello\n")
        try await Task.sleep(for: .milliseconds(50))
        s.sendControl("c")
        #expect(try await s.waitExit() == .signaled(SIGINT))
    }

    @Test("pty: a program that never prompts fails with a timeout instead of hanging")
    func ptyTimeout() async throws {
        let box = try Sandbox()
        let s = try Runner(binary: Binary(path: "/bin/sleep"), box: box).pty(["30"])
        await #expect(throws: HarnessError.self) { _ = try await s.readUntilPrompt(timeout: 0.3) }
        await #expect(throws: HarnessError.self) { _ = try await s.waitExit(timeout: 0.3) }
        #expect(!s.isRunning)
    }

    @Test("normalisation: escapes, CR LF, addresses, usage long options")
    func normalisation() {
        let raw = Array("\u{1b}[?2004h> 1+1\r\n\u{1b}[?2004l\r2\r\n\u{1}\u{1b}[1;31m\u{2}x\u{1b}[0m\u{7}".utf8)
        #expect(normalizeTerminal(raw) == "> 1+1\n2\nx")
        #expect(normalizeOutput("table: 0x55d0c3a1b2c0\t0x") == "table: 0x…\t0x")
        let usage = (["lua: unrecognized option '-x'"] + luaUsage("lua") + ["  --help    show this", "  --version x"]).joined(separator: "\n") + "\n"
        #expect(withoutLongOptions(usage) == (["lua: unrecognized option '-x'"] + luaUsage("lua")).joined(separator: "\n") + "\n")
    }
}
