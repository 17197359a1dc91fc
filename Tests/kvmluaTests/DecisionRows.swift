// Contract rows where kvmlua deliberately differs from Debian's lua5.4 (5.4.4) — the
// "Decisions for kvmlua" of ../shared/lua-cli-contract.md. Each test asserts kvmlua's decided
// behaviour on the binary under test and, when lua5.4 is installed, lua5.4's documented
// behaviour, so the difference stays on record.
//
// With KVMLUA_BIN=/usr/bin/lua5.4 the kvmlua half of these tests fails by design.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing

@Suite("Decision rows (kvmlua differs from lua5.4 5.4.4 on purpose)", .timeLimit(.minutes(1)))
struct DecisionRows {

    @Test("X6 error in a script read from non-tty stdin: kvmlua exits 1 (lua5.4 exits 0)")
    func x6() async throws {
        let r = try await runBoth { run in
            [
                try await run.run([], stdin: "print('before')\nerror(\"x\")\n"),
                try await run.run(["-"], stdin: "print('before')\nerror(\"x\")\n"),
            ]
        }
        let message = "lua: stdin:2: x\n" + traceback(errorFrame, "stdin:2: in main chunk", mainC)
        // kvmlua: the implicit and the explicit `-` behave the same.
        #expect(r.kvmlua[0] == Outcome(stdout: "before\n", stderr: message, status: .exited(1)))
        #expect(r.kvmlua[1] == Outcome(stdout: "before\n", stderr: message, status: .exited(1)))
        if let ref = r.reference {
            // lua.c's pmain ignores the result of dofile(L, NULL): message printed, exit 0.
            #expect(ref[0] == Outcome(stdout: "before\n", stderr: message, status: .exited(0)))
            // An explicit `-` goes through handle_script and does exit 1.
            #expect(ref[1] == Outcome(stdout: "before\n", stderr: message, status: .exited(1)))
        }
    }

    @Test("R10 EOF (Ctrl-D) in a continuation line: the real syntax error, back to the prompt (5.4.4: (null))")
    func r10() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("for i=1,2 do", prompt: ">> "))
            s.sendControl("d")
            // Whether a newline precedes the message is not part of the row.
            d.add(String(try await s.readUntilPrompt().drop { $0 == "\n" }))
            d.add(try await s.line("1+1"))
            d.status = try await quit(s)
            return d
        }
        #expect(r.kvmlua.parts == ["", "stdin:1: 'end' expected near <eof>\n", "2\n"], "\(r.kvmlua)")
        #expect(r.kvmlua.status == .exited(0))
        if let ref = r.reference {
            #expect(ref.parts == ["", "(null)\n", "2\n"], "\(ref)")
            #expect(ref.status == .exited(0))
        }
    }

    @Test("S3 Ctrl-C at an idle prompt cancels the line, fresh prompt; Ctrl-D exits (lua5.4: killed by SIGINT)")
    func s3() async throws {
        let k = try Sandbox()
        do {
            let s = try Runner(binary: .underTest, box: k).pty()
            _ = try await s.readUntilPrompt()
            s.send("print('A'")
            try await s.expect("print('A'")
            s.sendControl("c")
            _ = try await s.readUntilPrompt()
            // The cancelled text is gone: had it stayed, this line would continue it.
            let afterCancel = try await s.line("print('B')")
            #expect(afterCancel == "B\n")
            // Ctrl-C at an empty prompt: still alive, fresh prompt.
            s.sendControl("c")
            _ = try await s.readUntilPrompt()
            #expect(try await s.line("1+1") == "2\n")
            #expect(try await quit(s) == .exited(0))
        }
        if let ref = Binary.reference {
            let s = try Runner(binary: ref, box: try Sandbox()).pty()
            _ = try await s.readUntilPrompt()
            s.send("print('A'")
            try await s.expect("print('A'")
            s.sendControl("c")
            #expect(try await s.waitExit() == .signaled(SIGINT))
        }
    }

    @Test("H2 history persists in $XDG_STATE_HOME/kvmlua/history (0600, secrets filtered, multi-line kept); lua5.4 keeps none")
    func h2() async throws {
        let k = try Sandbox()
        let run = Runner(binary: .underTest, box: k)
        do {
            let s = try run.pty()
            _ = try await s.readUntilPrompt()
            #expect(try await s.line("print('hist-one')") == "hist-one\n")
            _ = try await s.line("for i=1,2 do", prompt: ">> ")
            _ = try await s.line("print(i)", prompt: ">> ")
            #expect(try await s.line("end") == "1\n2\n")
            for secret in [
                "password = 'hunter2'", "PASSWD='pw0rd42'", "local mySecret: x_s3cr3t",
                "api_token = 'tok3n99'", "cfg = {Token: 'tok3n77'}",
            ] {
                _ = try await s.line(secret)
            }
            #expect(try await quit(s) == .exited(0))
        }
        let file = k.state + "/kvmlua/history"
        let attrs = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600, "history file mode")
        let saved = try String(contentsOfFile: file, encoding: .utf8)
        #expect(saved.contains("print('hist-one')"))
        #expect(saved.contains("print(i)"))
        for leaked in ["hunter2", "pw0rd42", "s3cr3t", "tok3n99", "tok3n77"] {
            #expect(!saved.contains(leaked), "history file holds a secret line: \(leaked)")
        }
        do {
            // After a restart: the newest entry is the multi-line loop, one entry.
            let s = try run.pty()
            _ = try await s.readUntilPrompt()
            s.send(PTYSession.upArrow + PTYSession.upArrow + "\r")
            let first = try await s.readUntilPrompt()
            #expect(first.hasSuffix("hist-one\n"), "Up Up after restart: \(debugQuote(first))")
            s.send(PTYSession.upArrow + PTYSession.upArrow + "\r")
            let loop = try await s.readUntilPrompt()
            #expect(loop.hasSuffix("1\n2\n") && loop.contains("for i=1,2 do"), "multi-line entry after restart: \(debugQuote(loop))")
            #expect(try await quit(s) == .exited(0))
        }
        if let ref = Binary.reference {
            let box = try Sandbox()
            let rrun = Runner(binary: ref, box: box)
            let s1 = try rrun.pty()
            _ = try await s1.readUntilPrompt()
            _ = try await s1.line("print('hist-one')")
            #expect(try await quit(s1) == .exited(0))
            let s2 = try rrun.pty()
            _ = try await s2.readUntilPrompt()
            s2.send(PTYSession.upArrow + "\r")
            let recalled = try await s2.readUntilPrompt()
            #expect(dropEcho(recalled) == "" && !recalled.contains("hist-one"), "lua5.4 has no history after a restart: \(debugQuote(recalled))")
            #expect(try await quit(s2) == .exited(0))
            let stateFiles = try FileManager.default.subpathsOfDirectory(atPath: box.state)
            let homeFiles = try FileManager.default.subpathsOfDirectory(atPath: box.home)
            #expect(stateFiles.isEmpty && homeFiles.isEmpty, "lua5.4 writes no history file")
        }
    }

    @Test("5.4.8 -l mod-suffix: the global name is cut at the first '-' (5.4.4: whole name)")
    func lSuffix() async throws {
        let r = try await runBoth(setup: { try $0.write("mod-v2.lua", "return { v = 2 }\n") }) {
            try await $0.run(["-l", "mod-v2", "-e", "print(mod and mod.v, _G['mod-v2'] ~= nil)"])
        }
        #expect(r.kvmlua == Outcome(stdout: "2\tfalse\n", stderr: "", status: .exited(0)))
        if let ref = r.reference {
            #expect(ref == Outcome(stdout: "nil\ttrue\n", stderr: "", status: .exited(0)))
        }
    }
}
