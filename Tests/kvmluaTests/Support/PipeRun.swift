// Runs a program with stdin, stdout and stderr on pipes (stdout and stderr optionally on the
// same pipe, like `2>&1`), with a deadline after which the child is killed.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// Raw result of a pipe run.
struct PipeResult: Sendable {
    var stdout: [UInt8]
    var stderr: [UInt8]
    var status: ExitStatus
}

func runPiped(
    path: String, argv: [String], env: [String: String], cwd: String,
    stdin: [UInt8], mergeStderr: Bool, timeout: Double
) async throws -> PipeResult {
    let inPipe = try LibC.pipe()
    let outPipe = try LibC.pipe()
    let errPipe: (read: CInt, write: CInt)? = mergeStderr ? nil : try LibC.pipe()
    let pid: pid_t
    do {
        pid = try spawnProcess(
            path: path, argv: argv, env: env, cwd: cwd,
            io: .fds(stdin: inPipe.read, stdout: outPipe.write, stderr: errPipe?.write ?? outPipe.write))
    } catch {
        [inPipe.read, inPipe.write, outPipe.read, outPipe.write].forEach { close($0) }
        if let e = errPipe { close(e.read); close(e.write) }
        throw error
    }
    close(inPipe.read)
    close(outPipe.write)
    if let e = errPipe { close(e.write) }
    defer {
        close(outPipe.read)
        if let e = errPipe { close(e.read) }
    }
    // The inputs are small (far below the pipe buffer), so this never blocks; EPIPE (child
    // already gone) is fine.
    try? writeAll(inPipe.write, stdin)
    close(inPipe.write)

    var out: [UInt8] = []
    var err: [UInt8] = []
    var outOpen = true
    var errOpen = errPipe != nil
    let deadline = Deadline(seconds: timeout)
    var status: ExitStatus?
    while true {
        var progressed = false
        if outOpen {
            if let d = readAvailable(outPipe.read) { out += d; progressed = progressed || !d.isEmpty } else { outOpen = false }
        }
        if errOpen, let e = errPipe {
            if let d = readAvailable(e.read) { err += d; progressed = progressed || !d.isEmpty } else { errOpen = false }
        }
        var justReaped = false
        if status == nil {
            status = reap(pid)
            justReaped = status != nil
        }
        if let status, !outOpen && !errOpen {
            return PipeResult(stdout: out, stderr: err, status: status)
        }
        if let status, !progressed, !justReaped {
            // The child is gone and nothing is pending. A grandchild could still hold the
            // pipe open; do not wait for it.
            return PipeResult(stdout: out, stderr: err, status: status)
        }
        if deadline.passed {
            killAndReap(pid)
            throw HarnessError("""
                timeout after \(timeout)s: \(argv.joined(separator: " "))
                stdout so far: \(String(decoding: out, as: UTF8.self))
                stderr so far: \(String(decoding: err, as: UTF8.self))
                """)
        }
        if !progressed { await tick() }
    }
}
