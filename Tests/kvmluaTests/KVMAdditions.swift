// kvmlua beyond lua: the kvm module in the REPL and in scripts, Debian's C modules, tasks
// at the end of a script, Ctrl-C during a wait.

import Foundation
import Testing

@Suite("kvmlua: kvm module from the command line", .tags(.kvmluaAddition), .timeLimit(.minutes(1)))
struct KVMAdditions {
    @Test("Debian's Lua C modules load: require 'cjson'")
    func cjson() async throws {
        guard FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/lua/5.4/cjson.so")
            || FileManager.default.fileExists(atPath: "/usr/lib/aarch64-linux-gnu/lua/5.4/cjson.so")
        else {
            Issue.record("lua-cjson is not installed (scripts/setup --test installs it)")
            return
        }
        let box = try Sandbox()
        let r = try await Runner(binary: .underTest, box: box).run(["-e", #"print(require("cjson").encode({1,2}))"#])
        #expect(r == Outcome(stdout: "[1,2]\n", stderr: "", status: .exited(0)))
    }

    @Test("a script waits for its tasks; an unobserved task error exits 1 with a traceback")
    func tasksAtTheEnd() async throws {
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let ok = try await runner.run(["-e", "kvm.spawn(function() kvm.sleep(0.05) print('late') end) print('first')"])
        #expect(ok == Outcome(stdout: "first\nlate\n", stderr: "", status: .exited(0)))
        let failed = try await runner.run(["-e", "kvm.spawn(function() error('in task') end)"])
        #expect(failed.status == .exited(1))
        #expect(failed.stderr.hasPrefix("lua: task 1 failed: (command line):1: in task\nstack traceback:\n"), "\(failed.stderr)")
    }

    @Test("a kvm.Error in a script: position, one-line message, traceback, exit 1")
    func kvmErrorInScript() async throws {
        let box = try Sandbox()
        let r = try await Runner(binary: .underTest, box: box).run(["-e", "kvm.sleep('soon')"])
        #expect(r.status == .exited(1))
        #expect(
            r.stderr.hasPrefix(
                "lua: (command line):1: kvm: bad argument #1 to 'kvm.sleep' (number expected, got string)\nstack traceback:\n"),
            "\(r.stderr)")
    }

    @Test("the REPL shows a kvm.Error as one line with its position")
    func kvmErrorInREPL() async throws {
        let box = try Sandbox()
        let s = try Runner(binary: .underTest, box: box).pty()
        _ = try await s.readUntilPrompt()
        let out = try await s.line("kvm.sleep(-1)")
        #expect(out == "stdin:1: kvm: bad argument #1 to 'kvm.sleep' (seconds must be a finite number >= 0)\n", "\(debugQuote(out))")
        s.sendControl("d")
        #expect(try await s.waitExit() == .exited(0))
    }

    @Test("Ctrl-C during kvm.sleep in the REPL interrupts it and returns to the prompt")
    func ctrlCDuringWait() async throws {
        let box = try Sandbox()
        let s = try Runner(binary: .underTest, box: box).pty()
        _ = try await s.readUntilPrompt()
        let started = Date()
        s.send("kvm.sleep(30)\r")
        try await Task.sleep(nanoseconds: 300_000_000)
        s.sendControl("c")
        let out = try await s.readUntilPrompt(timeout: 5)
        #expect(out.contains("kvm: interrupted"), "\(debugQuote(out))")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(try await s.line("1+1") == "2\n")
        s.sendControl("d")
        #expect(try await s.waitExit() == .exited(0))
    }

    @Test("tasks spawned at the prompt keep running while it waits")
    func backgroundTasks() async throws {
        let box = try Sandbox()
        let s = try Runner(binary: .underTest, box: box).pty()
        _ = try await s.readUntilPrompt()
        _ = try await s.line("done = false; kvm.spawn(function() kvm.sleep(0.2) done = true end)")
        try await Task.sleep(nanoseconds: 600_000_000)
        #expect(try await s.line("done").hasSuffix("true\n"))
        s.sendControl("d")
        #expect(try await s.waitExit() == .exited(0))
    }
}
