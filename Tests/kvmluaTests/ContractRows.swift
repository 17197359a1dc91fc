// The rows of the lua CLI contract (../shared/lua-cli-contract.md §1.10) where kvmlua behaves
// exactly like the reference: each test asserts the contract's expected output on the binary
// under test and, when /usr/bin/lua5.4 is installed, equality with lua5.4's output for the same
// run (same argv[0], same environment, same files).
//
// The rows where kvmlua deliberately differs (X6, R10, S3, H2) are in DecisionRows.swift.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing

/// Normalised transcript of an interactive run: the output chunks a row looks at, and how the
/// program ended (nil: still running when the row was done with it).
struct Dialog: Equatable, CustomStringConvertible {
    var parts: [String] = []
    var status: ExitStatus?

    mutating func add(_ s: String) { parts.append(normalizeOutput(s)) }

    var description: String {
        parts.map(debugQuote).joined(separator: "\n  ") + "\n  status: \(status.map(String.init(describing:)) ?? "running")"
    }
}

/// `^C` as the terminal echoes it: its position relative to the program's output is timing, not
/// behaviour.
func withoutCaretC(_ s: String) -> String { s.replacingOccurrences(of: "^C", with: "") }

/// Ctrl-D at the prompt and wait for the exit.
func quit(_ s: PTYSession) async throws -> ExitStatus {
    s.sendControl("d")
    return try await s.waitExit()
}

let errorFrame = "[C]: in function 'error'"
let mainC = "[C]: in ?"

@Suite("lua CLI contract rows (same as lua5.4)", .timeLimit(.minutes(1)))
struct ContractRows {

    // MARK: - C: options

    @Test("C1 -v alone prints the version and does not enter the REPL")
    func c1() async throws {
        let piped = try await runBoth { try await $0.run(["-v"], stdin: "print('stdin ran')\n") }
        expectRow(piped) { o in
            #expect(o.status == .exited(0))
            #expect(o.stderr == "")
            let lines = o.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.count == 2 && isCopyrightLine(lines[0]) && lines[1] == "", "\(o)")
        }
        let onTTY = try await runBoth { run in
            let s = try run.pty(["-v"])
            var d = Dialog()
            d.status = try await s.waitExit()
            d.add(s.text)
            return d
        }
        expectRow(onTTY) { d in
            #expect(d.status == .exited(0))
            let lines = d.parts[0].split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.count == 2 && isCopyrightLine(lines[0]) && lines[1] == "", "no prompt expected: \(d)")
        }
    }

    @Test("C2 -e runs in order with chunk name (command line)")
    func c2() async throws {
        let r = try await runBoth { run in
            [
                try await run.run(["-e", "print(1)", "-e", "print(2)"]),
                try await run.run(["-e", "error(\"b\")"]),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "1\n2\n", stderr: "", status: .exited(0)))
            #expect(o[1] == Outcome(
                stdout: "",
                stderr: "lua: (command line):1: b\n" + traceback(errorFrame, "(command line):1: in main chunk", mainC),
                status: .exited(1)))
        }
    }

    @Test("C3 attached option arguments -eSTAT and -lMOD")
    func c3() async throws {
        let r = try await runBoth { run in
            [
                try await run.run(["-eprint(1)"]),
                try await run.run(["-lstring", "-e", "print(string~=nil)"]),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "1\n", stderr: "", status: .exited(0)))
            #expect(o[1] == Outcome(stdout: "true\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("C4 missing or option-like argument to -e / -l: message, usage, exit 1")
    func c4() async throws {
        let cases: [(args: [String], opt: String)] = [(["-e"], "-e"), (["-e", "-1"], "-e"), (["-l"], "-l"), (["-l", "-x"], "-l")]
        for (args, opt) in cases {
            let r = try await runBoth { try await $0.run(args) }
            expectRow((r.kvmlua.usageNormalized, r.reference?.usageNormalized)) { _ in }
            #expect(r.kvmlua.status == .exited(1), "\(args): \(r.kvmlua)")
            #expect(r.kvmlua.stdout == "", "\(args)")
            expectUsage(r.kvmlua.stderr, prog: "lua", after: ["lua: '\(opt)' needs argument"])
        }
        // PROG is argv[0] exactly as typed.
        for (argv0, prog) in [("./lua547", "./lua547"), ("/some/where/mylua", "/some/where/mylua")] {
            let r = try await runBoth { try await $0.run(["-e"], argv0: argv0) }
            expectRow((r.kvmlua.usageNormalized, r.reference?.usageNormalized)) { _ in }
            #expect(r.kvmlua.status == .exited(1))
            expectUsage(r.kvmlua.stderr, prog: prog, after: ["\(prog): '-e' needs argument"])
        }
    }

    @Test("C4 (empty argv[0]) PROG falls back to lua, as lua.c's LUA_PROGNAME (contract §1.2)")
    func c4EmptyArgv0() async throws {
        let r = try await runBoth { try await $0.run(["-e"], argv0: "") }
        expectRow((r.kvmlua.usageNormalized, r.reference?.usageNormalized)) { _ in }
        #expect(r.kvmlua.status == .exited(1))
        expectUsage(r.kvmlua.stderr, prog: "lua", after: ["lua: '-e' needs argument"])
    }

    @Test("C5 unknown or malformed option: unrecognized option + usage, exit 1, nothing run")
    func c5() async throws {
        let cases: [(args: [String], bad: String)] = [
            (["-x"], "-x"), (["-vx"], "-vx"), (["--x"], "--x"), (["-Ex"], "-Ex"), (["-ix"], "-ix"),
            (["-e", "print(1)", "-x"], "-x"),  // all options are checked before anything runs
        ]
        for (args, bad) in cases {
            let r = try await runBoth { try await $0.run(args) }
            expectRow((r.kvmlua.usageNormalized, r.reference?.usageNormalized)) { _ in }
            #expect(r.kvmlua.status == .exited(1), "\(args): \(r.kvmlua)")
            #expect(r.kvmlua.stdout == "", "\(args): nothing may run")
            expectUsage(r.kvmlua.stderr, prog: "lua", after: ["lua: unrecognized option '\(bad)'"])
        }
    }

    @Test("C6 -l mod and -l g=mod")
    func c6() async throws {
        let r = try await runBoth(setup: { try $0.write("mymod.lua", "return { v = 42 }\n") }) { run in
            [
                try await run.run(["-l", "S=string", "-e", "print(S.rep(\"a\",3))"]),
                try await run.run(["-l", "mymod", "-e", "print(mymod.v)"]),
                try await run.run(["-l", "m=mymod", "-e", "print(m.v, mymod)"]),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "aaa\n", stderr: "", status: .exited(0)))
            #expect(o[1] == Outcome(stdout: "42\n", stderr: "", status: .exited(0)))
            #expect(o[2] == Outcome(stdout: "42\tnil\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("C7 -l failure: module not found, search list, traceback, exit 1")
    func c7() async throws {
        let r = try await runBoth { try await $0.run(["-l", "nomod", "-e", "print('ran')"]) }
        expectRow(r) { o in
            #expect(o.status == .exited(1))
            #expect(o.stdout == "")
            #expect(o.stderr.hasPrefix("lua: module 'nomod' not found:\n\tno field package.preload['nomod']\n\tno file '"), "\(o)")
            #expect(o.stderr.contains("\tno file './nomod.lua'\n"))
            #expect(o.stderr.hasSuffix("\n" + traceback("[C]: in function 'require'", mainC)), "\(o)")
        }
    }

    @Test("C8 -i implies -v (before LUA_INIT), runs the script, then the REPL with arg")
    func c8() async throws {
        let r = try await runBoth(setup: { try $0.write("s.lua", "print(\"script\", ...)\n") }) { run in
            let s = try run.pty(["-i", "s.lua", "q"], env: ["LUA_INIT": "print('init')"])
            var d = Dialog()
            d.add(try await s.readUntilPrompt())
            d.add(try await s.line("print(arg[1], arg[0])"))
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            let banner = d.parts[0].split(separator: "\n", omittingEmptySubsequences: false)
            #expect(banner.count == 4 && isCopyrightLine(banner[0]), "\(d)")
            #expect(Array(banner.dropFirst()) == ["init", "script\tq", ""], "\(d)")
            #expect(d.parts[1] == "q\ts.lua\n")
            #expect(d.status == .exited(0))
        }
    }

    @Test("C9 -i with a failing -e: error, exit 1, no prompt")
    func c9() async throws {
        let r = try await runBoth { run in
            let s = try run.pty(["-i", "-e", "error(1)"])
            var d = Dialog()
            d.status = try await s.waitExit()
            d.add(s.text)
            return d
        }
        expectRow(r) { d in
            #expect(d.status == .exited(1))
            let text = d.parts[0]
            let firstLine = text.prefix { $0 != "\n" }
            #expect(isCopyrightLine(firstLine), "\(d)")
            #expect(text.dropFirst(firstLine.count) == "\nlua: 1\n" + traceback(errorFrame, "(command line):1: in main chunk", mainC), "\(d)")
            #expect(!text.contains("> "))
        }
    }

    @Test("C10 -E ignores LUA_INIT and LUA_PATH*, sets registry LUA_NOENV")
    func c10() async throws {
        let env: [String: String?] = ["LUA_INIT": "print(1)", "LUA_PATH_5_4": "/zz/?.lua"]
        let r = try await runBoth { run in
            [
                try await run.run(["-E", "-e", "print(package.path) print(debug.getregistry().LUA_NOENV)"], env: env),
                try await run.run(["-e", "print(package.path) print(debug.getregistry().LUA_NOENV)"], env: env),
            ]
        }
        expectRow(r) { o in
            #expect(o[0].status == .exited(0) && o[0].stderr == "")
            let lines = o[0].stdout.split(separator: "\n")
            #expect(lines.count == 2, "\(o[0])")
            #expect(lines.first.map { !$0.contains("/zz/") && $0.contains("./?.lua") } == true, "default path expected: \(o[0])")
            #expect(lines.last == "true")
            // Contrast: without -E both variables are honoured.
            #expect(o[1] == Outcome(stdout: "1\n/zz/?.lua\nnil\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("C11 -W turns warnings on (stderr 'Lua warning: '), default off, command-line order")
    func c11() async throws {
        let r = try await runBoth { run in
            [
                try await run.run(["-W", "-e", "warn(\"a\",\"b\")"]),
                try await run.run(["-e", "warn(\"x\")"]),
                try await run.run(["-e", "warn(\"x\")", "-W", "-e", "warn(\"y\")"]),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "", stderr: "Lua warning: ab\n", status: .exited(0)))
            #expect(o[1] == Outcome(stdout: "", stderr: "", status: .exited(0)))
            #expect(o[2] == Outcome(stdout: "", stderr: "Lua warning: y\n", status: .exited(0)))
        }
    }

    @Test("C12 -- stops options: `-- -` runs the file named -")
    func c12() async throws {
        let r = try await runBoth(setup: { try $0.write("-", "print(\"dash file\", ...)\n") }) { run in
            [
                try await run.run(["--", "-", "a"], stdin: "print('stdin')\n"),
                // `lua --` with nothing after it: no script, so (stdin not a tty) run stdin.
                try await run.run(["--"], stdin: "print('from stdin')\n"),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "dash file\ta\n", stderr: "", status: .exited(0)))
            #expect(o[1] == Outcome(stdout: "from stdin\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("C13 - runs stdin with the following arguments as ...")
    func c13() async throws {
        let r = try await runBoth { try await $0.run(["-", "x", "y"], stdin: "print(...)\n") }
        expectRow(r) { o in
            #expect(o == Outcome(stdout: "x\ty\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("C14 options stop at the script name")
    func c14() async throws {
        let r = try await runBoth(setup: { try $0.write("s.lua", "print(arg[1], arg[2], select('#', ...))\n") }) {
            try await $0.run(["s.lua", "-e", "print(9)"])
        }
        expectRow(r) { o in
            #expect(o == Outcome(stdout: "-e\tprint(9)\t2\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("C15 no arguments on a tty: version line, then the prompt")
    func c15() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            d.add(try await s.readUntilPrompt())
            d.add(try await s.line("1+1"))
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            let banner = d.parts[0].split(separator: "\n", omittingEmptySubsequences: false)
            #expect(banner.count == 2 && isCopyrightLine(banner[0]) && banner[1] == "", "\(d)")
            #expect(d.parts[1] == "2\n")
            #expect(d.status == .exited(0))
        }
    }

    @Test("C16 no arguments, stdin not a tty: runs stdin, no prompts")
    func c16() async throws {
        let r = try await runBoth { try await $0.run([], stdin: "print(\"p\")\nprint(1+1)\n") }
        expectRow(r) { o in
            #expect(o == Outcome(stdout: "p\n2\n", stderr: "", status: .exited(0)))
        }
    }

    // MARK: - A: arg and ...

    @Test("A1 arg indices with a script")
    func a1() async throws {
        let r = try await runBoth(setup: {
            try $0.write("s.lua", "print(arg[-3], arg[-2], arg[-1], arg[0], arg[1], arg[-4], arg[2], #arg)\n")
        }) { try await $0.run(["-e", "x=1", "s.lua", "a"]) }
        expectRow(r) { o in
            #expect(o == Outcome(stdout: "lua\t-e\tx=1\ts.lua\ta\tnil\tnil\t1\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("A2 arg without a script: arg[0] is the interpreter, options at positive indices")
    func a2() async throws {
        let r = try await runBoth { try await $0.run(["-e", "print(arg[0], arg[1], arg[2], #arg)"]) }
        expectRow(r) { o in
            #expect(o == Outcome(stdout: "lua\t-e\tprint(arg[0], arg[1], arg[2], #arg)\t2\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("A3 ... mirrors arg[1..#arg] at call time")
    func a3() async throws {
        let r = try await runBoth(setup: { try $0.write("s.lua", "print(select('#', ...), ...)\n") }) { run in
            [
                try await run.run(["s.lua", "p", "q"]),
                try await run.run(["-e", "arg[1]='changed'", "s.lua", "a"]),
                try await run.run(["-e", "arg=nil", "s.lua", "a"]),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "2\tp\tq\n", stderr: "", status: .exited(0)))
            #expect(o[1] == Outcome(stdout: "1\tchanged\n", stderr: "", status: .exited(0)))
            #expect(o[2] == Outcome(stdout: "", stderr: "lua: 'arg' is not a table\n", status: .exited(1)))
        }
    }

    @Test("A4 the script's return values are ignored: exit 0")
    func a4() async throws {
        let r = try await runBoth(setup: { try $0.write("s.lua", "return false, 'no'\n") }) { try await $0.run(["s.lua"]) }
        expectRow(r) { o in
            #expect(o == Outcome(stdout: "", stderr: "", status: .exited(0)))
        }
    }

    @Test("A5 a first line starting with # is skipped (line numbers still count it)")
    func a5() async throws {
        let r = try await runBoth(setup: {
            try $0.write("ok.lua", "#!/usr/bin/env lua\nprint('shebang ok')\n")
            try $0.write("bad.lua", "#!/usr/bin/env lua\nerror('e')\n")
        }) { run in
            [try await run.run(["ok.lua"]), try await run.run(["bad.lua"])]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "shebang ok\n", stderr: "", status: .exited(0)))
            #expect(o[1] == Outcome(stdout: "", stderr: "lua: bad.lua:2: e\n" + traceback(errorFrame, "bad.lua:2: in main chunk", mainC), status: .exited(1)))
        }
    }

    // MARK: - E: LUA_INIT

    @Test("E1 LUA_INIT_5_4 is preferred over LUA_INIT")
    func e1() async throws {
        let r = try await runBoth { run in
            [
                try await run.run(["-e", "print('e')"], env: ["LUA_INIT_5_4": "print('v54')", "LUA_INIT": "print('plain')"]),
                try await run.run(["-e", "print('e')"], env: ["LUA_INIT": "print('plain')"]),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "v54\ne\n", stderr: "", status: .exited(0)))
            #expect(o[1] == Outcome(stdout: "plain\ne\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("E2 LUA_INIT=@file runs the file")
    func e2() async throws {
        let r = try await runBoth(setup: { try $0.write("init.lua", "print('from init file')\n") }) {
            try await $0.run(["-e", "print('e')"], env: ["LUA_INIT": "@init.lua"])
        }
        expectRow(r) { o in
            #expect(o == Outcome(stdout: "from init file\ne\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("E3 an error in LUA_INIT: reported, nothing else runs, exit 1")
    func e3() async throws {
        let r = try await runBoth { run in
            [
                try await run.run(["-e", "print(1)"], env: ["LUA_INIT": "error(\"i\")"]),
                try await run.run(["-e", "print(1)"], env: ["LUA_INIT_5_4": "error(\"i\")"]),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "", stderr: "lua: LUA_INIT:1: i\n" + traceback(errorFrame, "LUA_INIT:1: in main chunk", mainC), status: .exited(1)))
            #expect(o[1] == Outcome(stdout: "", stderr: "lua: LUA_INIT_5_4:1: i\n" + traceback(errorFrame, "LUA_INIT_5_4:1: in main chunk", mainC), status: .exited(1)))
        }
    }

    // MARK: - X: errors and exit status

    @Test("X1 runtime error in a script: message, traceback, exit 1")
    func x1() async throws {
        let r = try await runBoth(setup: { try $0.write("e.lua", "local function f() error(\"bad thing\") end\nf()\n") }) {
            try await $0.run(["e.lua"])
        }
        expectRow(r) { o in
            #expect(o == Outcome(
                stdout: "",
                stderr: "lua: e.lua:1: bad thing\n" + traceback(errorFrame, "e.lua:1: in local 'f'", "e.lua:2: in main chunk", mainC),
                status: .exited(1)))
        }
    }

    @Test("X2 syntax error in a script: message without traceback, exit 1")
    func x2() async throws {
        let r = try await runBoth(setup: { try $0.write("se.lua", "x = = 1\n") }) { try await $0.run(["se.lua"]) }
        expectRow(r) { o in
            #expect(o == Outcome(stdout: "", stderr: "lua: se.lua:1: unexpected symbol near '='\n", status: .exited(1)))
        }
    }

    @Test("X3 missing script: cannot open, exit 1")
    func x3() async throws {
        let r = try await runBoth { try await $0.run(["nope.lua"]) }
        expectRow(r) { o in
            #expect(o == Outcome(stdout: "", stderr: "lua: cannot open nope.lua: No such file or directory\n", status: .exited(1)))
        }
    }

    @Test("X4 non-string error objects: type message + traceback; __tostring text alone")
    func x4() async throws {
        let r = try await runBoth { run in
            [
                try await run.run(["-e", "error({})"]),
                try await run.run(["-e", "error(setmetatable({}, {__tostring = function() return 'custom text' end}))"]),
                try await run.run(["-e", "error(nil)"]),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(
                stdout: "", stderr: "lua: (error object is a table value)\n" + traceback(errorFrame, "(command line):1: in main chunk", mainC),
                status: .exited(1)))
            #expect(o[1] == Outcome(stdout: "", stderr: "lua: custom text\n", status: .exited(1)))
            #expect(o[2] == Outcome(
                stdout: "", stderr: "lua: (error object is a nil value)\n" + traceback(errorFrame, "(command line):1: in main chunk", mainC),
                status: .exited(1)))
        }
    }

    @Test("X5 os.exit(n / true / false); normal end closes the state (finalizers run)")
    func x5() async throws {
        let r = try await runBoth { run in
            [
                try await run.run(["-e", "os.exit(3)"]),
                try await run.run(["-e", "os.exit(true)"]),
                try await run.run(["-e", "os.exit(false)"]),
                try await run.run(["-e", "io.write('buffered') os.exit(0)"]),
                try await run.run(["-e", "setmetatable({}, {__gc = function() print('finalized') end})"]),
            ]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "", stderr: "", status: .exited(3)))
            #expect(o[1] == Outcome(stdout: "", stderr: "", status: .exited(0)))
            #expect(o[2] == Outcome(stdout: "", stderr: "", status: .exited(1)))
            #expect(o[3] == Outcome(stdout: "buffered", stderr: "", status: .exited(0)))
            #expect(o[4] == Outcome(stdout: "finalized\n", stderr: "", status: .exited(0)))
        }
    }

    // MARK: - R: the REPL

    @Test("R1 prompts: _PROMPT / _PROMPT2, converted each time (dynamic via __tostring)")
    func r1() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("_PROMPT = 'lua$ '", prompt: "lua$ "))
            d.add(try await s.line("_PROMPT2 = 'cont# '", prompt: "lua$ "))
            d.add(try await s.line("for i = 1, 1 do", prompt: "cont# "))
            d.add(try await s.line("end", prompt: "lua$ "))
            d.add(try await s.line("n = 0", prompt: "lua$ "))
            d.add(try await s.line("mt = {__tostring = function() n = n + 1 return 'p' .. n .. '> ' end}", prompt: "lua$ "))
            d.add(try await s.line("_PROMPT = setmetatable({}, mt)", prompt: "p1> "))
            d.add(try await s.line("", prompt: "p2> "))
            d.add(try await s.line("1", prompt: "p3> "))
            d.add(try await s.line("_PROMPT = nil"))
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts == ["", "", "", "", "", "", "", "", "1\n", ""])
            #expect(d.status == .exited(0))
        }
    }

    @Test("R2 expression echo through print; statements print nothing")
    func r2() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            for l in ["1+1", "return nil, 1", "x = 5", "x", "f = function() return 'a', nil, 3 end", "f()", "'s'", "nil", "true, 1.5", "print('p')"] {
                d.add(try await s.line(l))
            }
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts == ["2\n", "nil\t1\n", "", "5\n", "", "a\tnil\t3\n", "s\n", "nil\n", "true\t1.5\n", "p\n"])
            #expect(d.status == .exited(0))
        }
    }

    @Test("R3 the =expr shortcut (Lua 5.4; kept by kvmlua)")
    func r3() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("=1,2"))
            d.add(try await s.line("= 'x' .. 'y'"))
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts == ["1\t2\n", "xy\n"])
            #expect(d.status == .exited(0))
        }
    }

    @Test("R4 continuation lines when the error ends in <eof>")
    func r4() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("for i=1,2 do", prompt: ">> "))
            d.add(try await s.line("print(i)", prompt: ">> "))
            d.add(try await s.line("end"))
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts == ["", "", "1\n2\n"])
            #expect(d.status == .exited(0))
        }
    }

    @Test("R5 unfinished string: continues, then rejected once a newline is inside")
    func r5() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("\"abc", prompt: ">> "))
            d.add(try await s.line("x"))
            d.add(try await s.line("1"))
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts == ["", "stdin:1: unfinished string near '\"abc'\n", "1\n"])
            #expect(d.status == .exited(0))
        }
    }

    @Test("R6 each line is its own chunk: locals do not survive")
    func r6() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("local y = 1"))
            d.add(try await s.line("y"))
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts == ["", "nil\n"])
            #expect(d.status == .exited(0))
        }
    }

    @Test("R7 REPL echo calls the global print; a failing print is reported")
    func r7() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("print = function(...) io.write('custom:', select('#', ...), '\\n') end"))
            d.add(try await s.line("1"))
            d.add(try await s.line("1, 2"))
            d.add(try await s.line("print = nil"))
            d.add(try await s.line("1"))
            d.add(try await s.line("x = 1"))
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts == ["", "custom:1\n", "custom:2\n", "", "error calling 'print' (attempt to call a nil value)\n", ""])
            #expect(d.status == .exited(0))
        }
    }

    @Test("R8 REPL errors: no PROG prefix, traceback for runtime errors only, loop continues")
    func r8() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("error(\"oops\")"))
            d.add(try await s.line("x = = 2"))
            d.add(try await s.line("error({})"))
            d.add(try await s.line("1+1"))
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts == [
                "stdin:1: oops\n" + traceback(errorFrame, "stdin:1: in main chunk", mainC),
                "stdin:1: unexpected symbol near '='\n",
                "(error object is a table value)\n" + traceback(errorFrame, "stdin:1: in main chunk", mainC),
                "2\n",
            ])
            #expect(d.status == .exited(0))
        }
    }

    @Test("R9 EOF at the primary prompt: newline, exit 0 even after failed lines")
    func r9() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("error('x')"))
            s.sendControl("d")
            d.status = try await s.waitExit()
            d.add(s.pending)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts.count == 2 && d.parts[1] == "\n", "\(d)")
            #expect(d.status == .exited(0))
        }
    }

    // MARK: - S: Ctrl-C

    @Test("S1 Ctrl-C during execution: interrupted! + traceback, REPL continues; script exits 1")
    func s1() async throws {
        let repl = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            s.send("print('go') while true do end\r")
            try await s.expect("go\n")
            try await Task.sleep(for: .milliseconds(100))
            s.sendControl("c")
            d.add(withoutCaretC(try await s.readUntilPrompt()))
            d.add(try await s.line("1+1"))
            d.status = try await quit(s)
            return d
        }
        expectRow(repl) { d in
            #expect(d.parts == ["interrupted!\n" + traceback("stdin:1: in main chunk", mainC), "2\n"])
            #expect(d.status == .exited(0))
        }
        let script = try await runBoth(setup: { try $0.write("loop.lua", "print('go')\nwhile true do end\n") }) { run in
            let s = try run.pty(["loop.lua"])
            var d = Dialog()
            try await s.expect("go\n")
            try await Task.sleep(for: .milliseconds(100))
            s.sendControl("c")
            d.status = try await s.waitExit()
            d.add(withoutCaretC(s.pending))
            return d
        }
        expectRow(script) { d in
            #expect(d.parts == ["lua: interrupted!\n" + traceback("loop.lua:2: in main chunk", mainC)])
            #expect(d.status == .exited(1))
        }
    }

    @Test("S2 a second Ctrl-C before the hook fires kills the process with SIGINT")
    func s2() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            // A long call inside C (string.find backtracking): the count hook cannot fire
            // until it returns, so the second SIGINT finds the default action.
            s.send("print('go') s = ('a'):rep(30000) s:find('.-.-.-b')\r")
            try await s.expect("go\n")
            try await Task.sleep(for: .milliseconds(150))
            s.sendControl("c")
            // Two ^C processed in one batch by a busy kernel become one signal: wait until the
            // first was handled (lua.c resets SIGINT to SIG_DFL in its handler), at most 2 s.
            let deadline = Deadline(seconds: 2)
            try await Task.sleep(for: .milliseconds(100))
            while signalCaught(s.pid, SIGINT) == true && !deadline.passed { await tick() }
            s.sendControl("c")
            d.status = try await s.waitExit(timeout: 5)
            return d
        }
        expectRow(r) { d in
            #expect(d.status == .signaled(SIGINT))
        }
    }

    // MARK: - H: history

    @Test("H1 a multi-line statement is one history entry; empty lines are not recorded")
    func h1() async throws {
        let r = try await runBoth { run in
            let s = try run.pty()
            var d = Dialog()
            _ = try await s.readUntilPrompt()
            d.add(try await s.line("for i=1,2 do", prompt: ">> "))
            d.add(try await s.line("print(i)", prompt: ">> "))
            d.add(try await s.line("end"))
            d.add(try await s.line(""))
            s.send(PTYSession.upArrow)
            s.send("\r")
            let recalled = try await s.readUntilPrompt()
            // The whole entry comes back and runs again (an "end" alone would be a syntax error).
            d.add(recalled.contains("for i=1,2 do") && recalled.contains("end") ? "recalled whole" : "recalled: " + recalled)
            d.add(recalled.hasSuffix("1\n2\n") ? "ran again" : "output: " + recalled)
            d.status = try await quit(s)
            return d
        }
        expectRow(r) { d in
            #expect(d.parts == ["", "", "1\n2\n", "", "recalled whole", "ran again"])
            #expect(d.status == .exited(0))
        }
    }

    // MARK: - B: buffering and streams

    @Test("B1 print flushes stdout, io.write does not")
    func b1() async throws {
        let code = "io.write(\"w1 \") print(\"p1\") io.stderr:write(\"E\\n\") io.write(\"w2\\n\")"
        let r = try await runBoth { run in
            [try await run.run(["-e", code]), try await run.run(["-e", code], merge: true)]
        }
        expectRow(r) { o in
            #expect(o[0] == Outcome(stdout: "w1 p1\nw2\n", stderr: "E\n", status: .exited(0)))
            #expect(o[1] == Outcome(stdout: "w1 p1\nE\nw2\n", stderr: "", status: .exited(0)))
        }
    }

    @Test("B2 buffered io.write vs error (2>&1): error text first, partial output last")
    func b2() async throws {
        let r = try await runBoth { try await $0.run(["-e", "io.write(\"partial-\") error(\"boom\")"], merge: true) }
        expectRow(r) { o in
            #expect(o == Outcome(
                stdout: "lua: (command line):1: boom\n" + traceback(errorFrame, "(command line):1: in main chunk", mainC) + "partial-",
                stderr: "", status: .exited(1)))
        }
    }

    @Test("B3 streams: prompts and results to stdout; errors, usage, warnings to stderr")
    func b3() async throws {
        let r = try await runBoth { run in
            [
                try await run.run(["-i"], stdin: "1+1\nerror(\"e\")\nwarn('@on') warn('w')\n"),
                try await run.run(["-v", "-e", "print('out') io.stderr:write('err\\n')"]),
            ]
        }
        // stdout of the REPL contains readline's echo of the piped input; compare only the
        // stream each piece of text lands on.
        let check = { (o: [Outcome]) in
            #expect(o[0].status == .exited(0))
            #expect(o[0].stdout.hasPrefix("Lua 5.4"), "version on stdout: \(o[0])")
            #expect(o[0].stdout.contains("> "), "prompt on stdout: \(o[0])")
            #expect(o[0].stdout.contains("\n2\n"), "result on stdout: \(o[0])")
            #expect(!o[0].stdout.contains("stdin:1:") && !o[0].stdout.contains("Lua warning"), "\(o[0])")
            #expect(o[0].stderr == "stdin:1: e\n" + traceback(errorFrame, "stdin:1: in main chunk", mainC) + "Lua warning: w\n", "\(o[0])")
            #expect(o[1].stdout.hasSuffix("\nout\n") && o[1].stderr == "err\n", "\(o[1])")
        }
        check(r.kvmlua)
        if let ref = r.reference {
            check(ref)
            #expect(r.kvmlua.map(\.stderr) == ref.map(\.stderr))
        }
    }
}
