// Ctrl-D on a continuation line, with readline's defaults (bracketed paste on, as a user has
// it; the other REPL tests turn it off): readline remembers the end of input it saw and printed
// a newline when it finished reading each later line, so every result after it came one line
// down (`> 1+1` gave "\n2"). lua 5.4.8 prints "2".

import Foundation
import Testing

@Suite("REPL after Ctrl-D on a continuation line", .tags(.kvmluaAddition), .timeLimit(.minutes(1)))
struct ReplEOFTests {
    /// A REPL whose inputrc leaves bracketed paste on.
    private func repl(_ box: Sandbox) async throws -> PTYSession {
        try box.write("inputrc-default", "set enable-bracketed-paste on\n")
        let session = try Runner(binary: .underTest, box: box).pty(env: ["INPUTRC": box.work + "/inputrc-default"])
        _ = try await session.readUntilPrompt()
        return session
    }

    @Test("the syntax error is printed, and the results after it have no empty line before them")
    func noEmptyLineAfterEOF() async throws {
        let box = try Sandbox()
        let session = try await repl(box)
        #expect(try await session.line("1+1") == "2\n")
        #expect(try await session.line("for i=1,2 do", prompt: ">> ") == "")
        session.sendControl("d")
        let error = try await session.readUntilPrompt()
        #expect(error.hasSuffix("stdin:1: 'end' expected near <eof>\n"), "\(debugQuote(error))")
        #expect(try await session.line("1+1") == "2\n")
        #expect(try await session.line("'x'") == "x\n")
        #expect(try await session.line("print(3)") == "3\n")
        // A second time, and a statement that completes on its continuation line, still clean.
        #expect(try await session.line("if true then", prompt: ">> ") == "")
        session.sendControl("d")
        _ = try await session.readUntilPrompt()
        #expect(try await session.line("if true then", prompt: ">> ") == "")
        #expect(try await session.line("print(4) end") == "4\n")
        #expect(try await session.line("5") == "5\n")
        #expect(try await quit(session) == .exited(0))
    }

    @Test("Ctrl-D at the primary prompt still ends the REPL, with what lua5.4 prints at that point")
    func eofAtPromptEnds() async throws {
        let r = try await runBoth(setup: { try $0.write("inputrc-default", "set enable-bracketed-paste on\n") }) { run in
            let session = try run.pty(env: ["INPUTRC": run.box.work + "/inputrc-default"])
            _ = try await session.readUntilPrompt()
            let one = try await session.line("1")
            session.sendControl("d")
            let status = try await session.waitExit()
            return [one, session.pending, "\(status)"]
        }
        #expect(r.kvmlua[0] == "1\n" && r.kvmlua[2] == "\(ExitStatus.exited(0))", "\(r.kvmlua)")
        // readline ends the line it was reading, then the REPL prints its newline (lua.c's too).
        #expect(r.kvmlua[1] == "\n\n", "\(r.kvmlua.map(debugQuote))")
        if let reference = r.reference { #expect(reference == r.kvmlua, "lua5.4: \(reference.map(debugQuote))") }
    }
}
