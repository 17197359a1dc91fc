// A program running on a pseudo-terminal (80x24), driven like a user at a keyboard.
//
// The master side is read without ever blocking; every wait has a timeout, and the child is
// killed when the session is dropped, so a hung binary fails its test instead of the suite.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

final class PTYSession {
    let pid: pid_t
    private let master: CInt
    private var raw: [UInt8] = []
    /// Offset in `text` up to which output has been consumed by `expect`.
    private var cursor: String.Index
    private var cachedText = ""
    private var cachedRawCount = -1
    private var exitStatus: ExitStatus?
    private var masterOpen = true
    let label: String

    init(path: String, argv: [String], env: [String: String], cwd: String, rows: UInt16 = 24, cols: UInt16 = 80) throws {
        let m = try LibC.posixOpenpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard m >= 0 else { throw HarnessError("posix_openpt: \(String(cString: strerror(errno)))") }
        guard try LibC.grantpt(m) == 0, try LibC.unlockpt(m) == 0 else {
            close(m)
            throw HarnessError("grantpt/unlockpt failed")
        }
        var ws = winsize(ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(m, UInt(TIOCSWINSZ), &ws)
        let slave: String
        do {
            slave = try LibC.ptsname(m)
            pid = try spawnProcess(path: path, argv: argv, env: env, cwd: cwd, io: .terminal(path: slave))
        } catch {
            close(m)
            throw error
        }
        master = m
        label = argv.joined(separator: " ")
        cursor = cachedText.startIndex
    }

    deinit {
        if exitStatus == nil { killAndReap(pid) }
        close(master)
    }

    // MARK: Output

    /// Everything the program wrote so far, normalised (see `normalizeTerminal`).
    var text: String {
        if cachedRawCount != raw.count {
            let consumed = cachedText.distance(from: cachedText.startIndex, to: cursor)
            cachedText = normalizeTerminal(raw)
            cachedRawCount = raw.count
            cursor = cachedText.index(cachedText.startIndex, offsetBy: min(consumed, cachedText.count))
        }
        return cachedText
    }

    /// Output not yet consumed by `expect`/`readUntil`.
    var pending: String { String(text[cursor...]) }

    /// Raw bytes (with escape sequences), for tests about escape sequences.
    var rawOutput: [UInt8] { raw }

    /// Reads whatever is available; returns false when nothing came.
    @discardableResult
    private func pump() -> Bool {
        guard masterOpen else { return false }
        guard let d = readAvailable(master) else {
            masterOpen = false  // EIO: the slave is closed everywhere (child exited)
            return false
        }
        raw += d
        return !d.isEmpty
    }

    /// Waits until `done(pending)` is true; consumes and returns the pending text up to the end
    /// index that `done` returns.
    private func readUntil(timeout: Double, what: String, _ done: (String) -> String.Index?) async throws -> String {
        let deadline = Deadline(seconds: timeout)
        while true {
            let got = pump()
            let p = pending
            if let end = done(p) {
                let consumed = String(p[..<end])
                cursor = text.index(cursor, offsetBy: consumed.count)
                return consumed
            }
            if !masterOpen && !got {
                throw HarnessError("\(label): output ended while waiting for \(what); pending: \(debugQuote(p)); status: \(String(describing: exitStatusNow()))")
            }
            if deadline.passed {
                throw HarnessError("\(label): timeout (\(timeout)s) waiting for \(what); pending: \(debugQuote(p))")
            }
            if !got { await tick() }
        }
    }

    /// Waits for `s` to appear; returns the output up to and including it.
    @discardableResult
    func expect(_ s: String, timeout: Double = 5) async throws -> String {
        try await readUntil(timeout: timeout, what: debugQuote(s)) { p in p.range(of: s)?.upperBound }
    }

    /// Waits until the last line of the output is exactly `prompt` (the program is waiting for
    /// input); returns the output before the prompt, the prompt itself consumed.
    func readUntilPrompt(_ prompt: String = "> ", timeout: Double = 5) async throws -> String {
        let all = try await readUntil(timeout: timeout, what: "prompt \(debugQuote(prompt))") { p in
            guard p.hasSuffix(prompt) else { return nil }
            let before = p.dropLast(prompt.count)
            guard before.isEmpty || before.hasSuffix("\n") else { return nil }
            return p.endIndex
        }
        return String(all.dropLast(prompt.count))
    }

    /// Types `line` and Enter at a prompt; waits for the next prompt (`prompt`, default `> `);
    /// returns what the program printed in between, without the echo of the typed line.
    func line(_ line: String, prompt: String = "> ", timeout: Double = 5) async throws -> String {
        send(line + "\r")
        return dropEcho(try await readUntilPrompt(prompt, timeout: timeout))
    }

    /// Reads whatever arrives within `seconds` (for asserting that nothing more comes).
    func drain(for seconds: Double) async -> String {
        let deadline = Deadline(seconds: seconds)
        while !deadline.passed {
            if !pump() { await tick() }
        }
        let p = pending
        cursor = text.endIndex
        return p
    }

    // MARK: Input

    func send(_ s: String) {
        try? writeAll(master, Array(s.utf8))
    }

    /// Sends Ctrl-<letter>: `sendControl("c")` is ^C (SIGINT through the line discipline).
    func sendControl(_ letter: Character) {
        guard let a = letter.lowercased().unicodeScalars.first?.value else { return }
        send(String(UnicodeScalar(UInt8(a - 96))))
    }

    static let upArrow = "\u{1b}[A"

    // MARK: Exit

    private func exitStatusNow() -> ExitStatus? {
        if exitStatus == nil { exitStatus = reap(pid) }
        return exitStatus
    }

    var isRunning: Bool { exitStatusNow() == nil }

    /// Waits for the program to end (reading its output meanwhile); kills it on timeout.
    func waitExit(timeout: Double = 5) async throws -> ExitStatus {
        let deadline = Deadline(seconds: timeout)
        while true {
            let got = pump()
            if let s = exitStatusNow() {
                while pump() {}
                return s
            }
            if deadline.passed {
                killAndReap(pid)
                exitStatus = .signaled(SIGKILL)
                throw HarnessError("\(label): still running after \(timeout)s; pending: \(debugQuote(pending))")
            }
            if !got { await tick() }
        }
    }
}

/// The response part of what `line` read: everything after the echoed input line.
func dropEcho(_ s: String) -> String {
    guard let nl = s.firstIndex(of: "\n") else { return "" }
    return String(s[s.index(after: nl)...])
}

/// Terminal output → plain text: CR LF → LF, lone CR dropped, ANSI/VT escape sequences and
/// readline's prompt-ignore markers (\001, \002) and bells removed.
func normalizeTerminal(_ raw: [UInt8]) -> String {
    var s = String(decoding: raw, as: UTF8.self)
    s = stripEscapes(s)
    s = s.replacingOccurrences(of: "\r\n", with: "\n")
    s = s.replacingOccurrences(of: "\r", with: "")
    s.removeAll { $0 == "\u{01}" || $0 == "\u{02}" || $0 == "\u{07}" }
    return s
}

/// Removes CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL/ST`) and two-byte escapes.
func stripEscapes(_ s: String) -> String {
    var out = String.UnicodeScalarView()
    var it = Array(s.unicodeScalars)[...]
    while let c = it.popFirst() {
        guard c == "\u{1b}" else { out.append(c); continue }
        guard let n = it.popFirst() else { break }
        switch n {
        case "[":
            while let x = it.popFirst(), !(0x40...0x7e).contains(x.value) {}
        case "]":
            while let x = it.popFirst() {
                if x == "\u{07}" { break }
                if x == "\u{1b}" { _ = it.popFirst(); break }
            }
        case "(", ")", "*", "+":
            _ = it.popFirst()
        default:
            break  // ESC =, ESC >, ESC 7, ...
        }
    }
    return String(out)
}

func debugQuote(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\"": out += "\\\""
        default:
            if u.value < 0x20 || u.value == 0x7f { out += String(format: "\\x%02x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
