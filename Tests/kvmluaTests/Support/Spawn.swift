// Process plumbing for the CLI tests: posix_spawn with an explicit argv[0], a working
// directory, a clean signal state and chosen file descriptors; exit status decoding; waiting
// with a deadline that never blocks the cooperative thread pool.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// How a child process ended.
enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    init(waitStatus st: Int32) {
        let sig = st & 0x7f
        if sig == 0 {
            self = .exited((st >> 8) & 0xff)
        } else {
            self = .signaled(sig)
        }
    }

    var description: String {
        switch self {
        case .exited(let code): return "exit \(code)"
        case .signaled(let sig): return "signal \(sig)"
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// GNU/XSI functions that the Swift Glibc module does not import (they sit behind
/// `_GNU_SOURCE`), looked up at run time.
enum LibC {
    typealias IntToInt = @convention(c) (CInt) -> CInt
    typealias PtsnameR = @convention(c) (CInt, UnsafeMutablePointer<CChar>?, Int) -> CInt
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> CInt
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<CInt>?, CInt) -> CInt

    private static func symbol<T>(_ name: String, as type: T.Type) throws -> T {
        guard let handle = dlopen(nil, RTLD_NOW), let sym = dlsym(handle, name) else {
            throw HarnessError("libc symbol \(name) not found")
        }
        return unsafeBitCast(sym, to: type)
    }

    static func posixOpenpt(_ flags: CInt) throws -> CInt { try symbol("posix_openpt", as: IntToInt.self)(flags) }
    static func grantpt(_ fd: CInt) throws -> CInt { try symbol("grantpt", as: IntToInt.self)(fd) }
    static func unlockpt(_ fd: CInt) throws -> CInt { try symbol("unlockpt", as: IntToInt.self)(fd) }
    static func ptsname(_ fd: CInt) throws -> String {
        var buf = [CChar](repeating: 0, count: 256)
        let rc = try symbol("ptsname_r", as: PtsnameR.self)(fd, &buf, buf.count)
        guard rc == 0 else { throw HarnessError("ptsname_r failed: \(rc)") }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    static func addChdir(_ fa: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ dir: String) throws -> CInt {
        try symbol("posix_spawn_file_actions_addchdir_np", as: AddChdir.self)(fa, dir)
    }
    /// A pipe whose both ends are close-on-exec from the start, so children spawned by other
    /// tests running in parallel never inherit them.
    static func pipe() throws -> (read: CInt, write: CInt) {
        var fds: [CInt] = [-1, -1]
        guard try symbol("pipe2", as: Pipe2.self)(&fds, O_CLOEXEC) == 0 else {
            throw HarnessError("pipe2: \(String(cString: strerror(errno)))")
        }
        return (fds[0], fds[1])
    }

    /// Writing stdin to a child that already exited must not kill the test process.
    static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()
}

/// What the child's file descriptors 0, 1, 2 become.
enum ChildIO {
    /// dup2 these parent descriptors onto 0, 1, 2.
    case fds(stdin: CInt, stdout: CInt, stderr: CInt)
    /// New session; open this terminal (by path) as 0, 1 and 2, making it the controlling tty.
    case terminal(path: String)
}

/// Starts `path` with `argv` (argv[0] included, exactly as given), `env`, in `cwd`. Every signal
/// has its default action and none is blocked in the child, whatever the test runner does.
func spawnProcess(path: String, argv: [String], env: [String: String], cwd: String, io: ChildIO) throws -> pid_t {
    _ = LibC.ignoreSIGPIPE
    var fa = posix_spawn_file_actions_t()
    var attr = posix_spawnattr_t()
    posix_spawn_file_actions_init(&fa)
    posix_spawnattr_init(&attr)
    defer {
        posix_spawn_file_actions_destroy(&fa)
        posix_spawnattr_destroy(&attr)
    }
    guard try LibC.addChdir(&fa, cwd) == 0 else { throw HarnessError("addchdir failed") }
    var flags = CShort(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
    switch io {
    case .fds(let i, let o, let e):
        posix_spawn_file_actions_adddup2(&fa, i, 0)
        posix_spawn_file_actions_adddup2(&fa, o, 1)
        posix_spawn_file_actions_adddup2(&fa, e, 2)
    case .terminal(let tty):
        flags |= 0x80  // POSIX_SPAWN_SETSID (glibc >= 2.26; not imported into Swift)
        // setsid() runs before the file actions, so opening the slave without O_NOCTTY
        // makes it the controlling terminal of the new session.
        posix_spawn_file_actions_addopen(&fa, 0, tty, O_RDWR, 0)
        posix_spawn_file_actions_adddup2(&fa, 0, 1)
        posix_spawn_file_actions_adddup2(&fa, 0, 2)
    }
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigdefault(&attr, &all)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setflags(&attr, flags)

    let cArgv = argv.map { strdup($0) } + [nil]
    let cEnv = env.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        cArgv.forEach { free($0) }
        cEnv.forEach { free($0) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &fa, &attr, cArgv, cEnv)
    guard rc == 0 else { throw HarnessError("posix_spawn \(path): \(String(cString: strerror(rc)))") }
    return pid
}

/// Non-blocking waitpid: the status if the child has ended.
func reap(_ pid: pid_t) -> ExitStatus? {
    var st: Int32 = 0
    let r = waitpid(pid, &st, WNOHANG)
    if r == pid { return ExitStatus(waitStatus: st) }
    return nil
}

/// SIGKILL and reap (used on timeouts and in cleanup).
func killAndReap(_ pid: pid_t) {
    kill(pid, SIGKILL)
    var st: Int32 = 0
    while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
}

/// Reads what is available on `fd` right now (never blocks). nil at end of file or on an error
/// such as EIO from a pty master whose slave side is gone.
func readAvailable(_ fd: CInt) -> [UInt8]? {
    var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&pfd, 1, 0) > 0 else { return [] }
    var buf = [UInt8](repeating: 0, count: 65536)
    let n = read(fd, &buf, buf.count)
    if n > 0 { return Array(buf[0..<n]) }
    if n < 0 && (errno == EAGAIN || errno == EINTR) { return [] }
    return nil
}

func writeAll(_ fd: CInt, _ bytes: [UInt8]) throws {
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { continue }
            throw HarnessError("write: \(String(cString: strerror(errno)))")
        }
        off += n
    }
}

/// A monotonic deadline.
struct Deadline {
    let end: ContinuousClock.Instant
    init(seconds: Double) { end = .now + .milliseconds(Int(seconds * 1000)) }
    var passed: Bool { ContinuousClock.now >= end }
}

/// Lets other tests run while we poll.
func tick() async { try? await Task.sleep(for: .milliseconds(4)) }

/// Whether `pid` currently has a handler installed for `sig` (from /proc/<pid>/status SigCgt);
/// nil if that cannot be read.
func signalCaught(_ pid: pid_t, _ sig: Int32) -> Bool? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
          let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    else { return nil }
    return mask & (UInt64(1) << UInt64(sig - 1)) != 0
}
