// The binaries under test, per-test sandboxes, and the helpers that run one row against
// kvmlua and against the reference interpreter.
//
// Environment:
//   KVMLUA_BIN        binary under test (default: `kvmlua` next to the test executable)
//   KVMLUA_REFERENCE  reference interpreter (default: /usr/bin/lua5.4 when it exists);
//                     "none" disables the comparison runs.
// With KVMLUA_BIN=/usr/bin/lua5.4 the suite checks its own expectations against the reference
// (then no comparison run is made): every row outside DecisionRows must pass.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing

struct Binary: Sendable, CustomStringConvertible {
    let path: String
    var description: String { path }

    /// The binary under test.
    static let underTest: Binary = {
        if let p = ProcessInfo.processInfo.environment["KVMLUA_BIN"], !p.isEmpty {
            return Binary(path: absolute(p))
        }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments.first ?? ""
        let dir = (exe as NSString).deletingLastPathComponent
        return Binary(path: (dir as NSString).appendingPathComponent("kvmlua"))
    }()

    /// lua5.4 (the reference), unless it is missing, disabled, or itself the binary under test.
    static let reference: Binary? = {
        let env = ProcessInfo.processInfo.environment["KVMLUA_REFERENCE"]
        if env == "none" { return nil }
        let path = absolute(env.flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/bin/lua5.4")
        guard FileManager.default.isExecutableFile(atPath: path) else { return nil }
        if realpath(path) == realpath(underTest.path) { return nil }
        return Binary(path: path)
    }()

    /// True when the binary under test is the reference itself (KVMLUA_BIN=/usr/bin/lua5.4).
    static let underTestIsReference: Bool = {
        let ref = ProcessInfo.processInfo.environment["KVMLUA_REFERENCE"].flatMap { $0.isEmpty || $0 == "none" ? nil : $0 } ?? "/usr/bin/lua5.4"
        return realpath(absolute(ref)) == realpath(underTest.path)
    }()

    private static func absolute(_ p: String) -> String {
        p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
    }

    private static func realpath(_ p: String) -> String {
        (p as NSString).resolvingSymlinksInPath
    }
}

/// A fresh temporary directory per run: `work/` (the working directory), `home/` (HOME),
/// `state/` (XDG_STATE_HOME), and an `inputrc` that turns bracketed paste off.
final class Sandbox {
    let root: String
    var work: String { root + "/work" }
    var home: String { root + "/home" }
    var state: String { root + "/state" }
    var inputrc: String { root + "/inputrc" }

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        root = base + "/kvmluaTests-" + UUID().uuidString
        for d in [work, home, state] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        try "set enable-bracketed-paste off\n".write(toFile: inputrc, atomically: false, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Writes a file relative to `work/` (or absolute).
    func write(_ name: String, _ contents: String) throws {
        let path = name.hasPrefix("/") ? name : work + "/" + name
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// The minimal environment every child starts from: no LUA_INIT*, LUA_PATH*, LUA_CPATH*,
    /// no user config or history; no colour; a dumb terminal.
    var baseEnv: [String: String] {
        [
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "XDG_STATE_HOME": state,
            "XDG_CONFIG_HOME": home + "/.config",
            "INPUTRC": inputrc,
            "TERM": "dumb",
            "NO_COLOR": "1",
        ]
    }
}

/// Normalised result of a non-interactive run.
struct Outcome: Equatable, Sendable, CustomStringConvertible {
    var stdout: String
    var stderr: String
    var status: ExitStatus

    var description: String {
        "\(status)\n  stdout: \(debugQuote(stdout))\n  stderr: \(debugQuote(stderr))"
    }
}

/// One binary in one sandbox.
struct Runner {
    let binary: Binary
    let box: Sandbox

    /// argv[0] for every run: both binaries print the same `PROG` this way.
    static let prog = "lua"

    func env(_ extra: [String: String?]) -> [String: String] {
        var e = box.baseEnv
        for (k, v) in extra { e[k] = v }
        return e
    }

    /// Runs with pipes. `env` entries with a nil value are removed from the base environment.
    func run(
        _ args: [String], stdin: String = "", env extra: [String: String?] = [:],
        merge: Bool = false, argv0: String = Runner.prog, timeout: Double = 10
    ) async throws -> Outcome {
        let r = try await runPiped(
            path: binary.path, argv: [argv0] + args, env: env(extra), cwd: box.work,
            stdin: Array(stdin.utf8), mergeStderr: merge, timeout: timeout)
        return Outcome(
            stdout: normalizeOutput(String(decoding: r.stdout, as: UTF8.self)),
            stderr: normalizeOutput(String(decoding: r.stderr, as: UTF8.self)),
            status: r.status)
    }

    /// Starts a pseudo-terminal session.
    func pty(_ args: [String] = [], env extra: [String: String?] = [:], argv0: String = Runner.prog) throws -> PTYSession {
        try PTYSession(path: binary.path, argv: [argv0] + args, env: env(extra), cwd: box.work)
    }
}

/// Masks addresses (`table: 0x55d0c3a1b2c0` → `table: 0x…`).
func normalizeOutput(_ s: String) -> String {
    var out = ""
    var i = s.startIndex
    while i < s.endIndex {
        if s[i] == "0", s.index(after: i) < s.endIndex, s[s.index(after: i)] == "x" {
            var j = s.index(i, offsetBy: 2)
            while j < s.endIndex, s[j].isHexDigit { j = s.index(after: j) }
            if j > s.index(i, offsetBy: 2) {
                out += "0x…"
                i = j
                continue
            }
        }
        out.append(s[i])
        i = s.index(after: i)
    }
    return out
}

/// Runs `body` against the binary under test and, when available, against the reference, each in
/// its own fresh sandbox prepared by `setup`.
func runBoth<T>(
    setup: (Sandbox) throws -> Void = { _ in },
    _ body: (Runner) async throws -> T
) async throws -> (kvmlua: T, reference: T?) {
    let box = try Sandbox()
    try setup(box)
    let k = try await body(Runner(binary: .underTest, box: box))
    var r: T?
    if let ref = Binary.reference {
        let refBox = try Sandbox()
        try setup(refBox)
        r = try await body(Runner(binary: ref, box: refBox))
    }
    return (k, r)
}

/// For rows where kvmlua must behave exactly like the reference: asserts `expected` on the
/// binary under test, and equality with the reference when it runs.
func expectRow<T: Equatable>(
    _ result: (kvmlua: T, reference: T?),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ expected: (T) -> Void
) {
    expected(result.kvmlua)
    if let r = result.reference {
        #expect(result.kvmlua == r, "differs from the reference (lua5.4)", sourceLocation: sourceLocation)
    }
}

// MARK: - The reference texts

/// `LUA_COPYRIGHT` of the linked library, e.g. `Lua 5.4.4  Copyright (C) 1994-2022 Lua.org, PUC-Rio`.
func isCopyrightLine(_ s: Substring) -> Bool {
    s.wholeMatch(of: /Lua 5\.4\.\d+  Copyright \(C\) 1994-20\d\d Lua\.org, PUC-Rio/) != nil
}

/// lua.c's usage text for `prog`: header, "Available options are:", nine option lines.
func luaUsage(_ prog: String) -> [String] {
    [
        "usage: \(prog) [options] [script [args]]",
        "Available options are:",
        "  -e stat   execute string 'stat'",
        "  -i        enter interactive mode after executing 'script'",
        "  -l mod    require library 'mod' into global 'mod'",
        "  -l g=mod  require library 'mod' into global 'g'",
        "  -v        show version information",
        "  -E        ignore environment variables",
        "  -W        turn warnings on",
        "  --        stop handling options",
        "  -         stop handling options and execute stdin",
    ]
}

/// Checks `text` is `firstLine` followed by the usage (lua's lines exactly, then optional
/// kvmlua long-option lines, each starting with two spaces and `--`). Returns the extra lines.
@discardableResult
func expectUsage(
    _ text: String, prog: String, after firstLines: [String],
    sourceLocation: SourceLocation = #_sourceLocation
) -> [String] {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if lines.last == "" { lines.removeLast() } else {
        Issue.record("usage text does not end with a newline: \(debugQuote(text))", sourceLocation: sourceLocation)
    }
    let head = firstLines + luaUsage(prog)
    #expect(Array(lines.prefix(head.count)) == head, sourceLocation: sourceLocation)
    let extra = Array(lines.dropFirst(head.count))
    for l in extra {
        #expect(l.hasPrefix("  --") && l.count > 4, "extra usage line must be a long option: \(debugQuote(l))", sourceLocation: sourceLocation)
    }
    return extra
}

/// Drops kvmlua's long-option lines that follow lua's last usage line, so usage texts can be
/// compared with the reference's.
func withoutLongOptions(_ text: String) -> String {
    var out: [Substring] = []
    var inExtra = false
    for l in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if inExtra && l.hasPrefix("  --") && l.count > 4 { continue }
        inExtra = l == "  -         stop handling options and execute stdin"
        out.append(l)
    }
    return out.joined(separator: "\n")
}

extension Outcome {
    /// Same outcome with kvmlua's long-option usage lines removed.
    var usageNormalized: Outcome {
        Outcome(stdout: withoutLongOptions(stdout), stderr: withoutLongOptions(stderr), status: status)
    }
}

/// A traceback as lua.c prints it, from frame lines.
func traceback(_ frames: String...) -> String {
    "stack traceback:\n" + frames.map { "\t" + $0 + "\n" }.joined()
}
