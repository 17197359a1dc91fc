// Recording the screen: `.avi` Motion-JPEG written as frames arrive (AVIWriter), `.mp4` by
// writing that AVI to a temporary file and transcoding it with ffmpeg when ffmpeg is on PATH.
// The frame rate is what was actually recorded: frames / seconds.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `record` wrote.
public struct RecordingResult: Sendable, Equatable {
    /// Frames in the file.
    public let frames: Int
    /// Length of the video in seconds (frames / seconds is its frame rate).
    public let seconds: Double
    public let path: String
    /// True when the recording stopped early at the AVI size limit (2 GiB).
    public let reachedSizeLimit: Bool
}

/// Containers `record` writes, by extension.
public enum VideoFileType: Sendable {
    case avi
    case mp4

    /// Raises `usage` unless `path` ends in `.avi` or `.mp4` (any case).
    public init(path: String) throws(NanoKVMError) {
        let lower = path.lowercased()
        if lower.hasSuffix(".avi") {
            self = .avi
        } else if lower.hasSuffix(".mp4") {
            self = .mp4
        } else {
            throw NanoKVMError(.usage, "the file name must end in .avi (Motion-JPEG) or .mp4 (needs ffmpeg): '\(path)'")
        }
    }
}

extension FrameSource {
    /// Records the screen to `path` for `seconds`, or until `frames` frames (whichever comes
    /// first; at least one must be given). `.avi` is written natively; `.mp4` needs ffmpeg on
    /// PATH (`unsupported` otherwise, raised before anything is recorded). Frames come from
    /// the shared stream, so a wait can run at the same time. On cancellation the file is
    /// finished (playable) and `cancelled` is raised.
    public func record(to path: String, seconds: Double? = nil, frames: Int? = nil) async throws(NanoKVMError) -> RecordingResult {
        let type = try VideoFileType(path: path)
        guard seconds != nil || frames != nil else {
            throw NanoKVMError(.usage, "record needs seconds or frames (how long to record)")
        }
        if let seconds {
            guard seconds.isFinite, seconds > 0, seconds <= 86_400 else {
                throw NanoKVMError(.usage, "seconds must be a positive number up to 86400, got \(seconds)")
            }
        }
        if let frames {
            guard frames > 0 else { throw NanoKVMError(.usage, "frames must be a positive integer, got \(frames)") }
        }
        var ffmpeg: String?
        var aviPath = path
        let existed = access(path, F_OK) == 0
        if type == .mp4 {
            guard let found = ExternalProcess.find("ffmpeg") else {
                throw NanoKVMError(
                    .unsupported, "recording to .mp4 needs ffmpeg on PATH (apt install ffmpeg); .avi is written without it")
            }
            ffmpeg = found
            aviPath = try ExternalProcess.temporaryPath(suffix: ".avi")
        } else {
            try Self.checkWritable(path)
        }
        defer { if ffmpeg != nil { unlink(aviPath) } }

        let subscription = try subscribe(bufferedFrames: 512)
        defer { subscription.close() }
        let first: (frame: Frame, fresh: Bool)
        do {
            first = try await currentFrame(subscription, deadline: MonotonicClock.now() + 10)
        } catch {
            if ffmpeg == nil && !existed { unlink(path) }  // nothing recorded: leave no empty file
            throw error
        }
        let start = first.fresh ? first.frame.time : MonotonicClock.now()
        let stopAt = seconds.map { start + $0 }
        let writer = try AVIWriter(path: aviPath, width: first.frame.width, height: first.frame.height)
        var lastTime = start
        var reachedLimit = false
        var failure: NanoKVMError?
        var endedByTime = false
        do throws(NanoKVMError) {
            try writer.append(first.frame.jpeg())
            recording: while frames.map({ writer.frameCount < $0 }) ?? true {
                // Without a time limit, 10 s without any frame is an error.
                let deadline = stopAt ?? (MonotonicClock.now() + 10)
                switch try await subscription.receive(until: deadline) {
                case .frame(let frame):
                    if let stopAt, frame.time >= stopAt {
                        endedByTime = true
                        break recording
                    }
                    let jpeg = try frame.jpeg()
                    guard writer.fits(jpeg.count) else {
                        reachedLimit = true
                        break recording
                    }
                    try writer.append(jpeg)
                    lastTime = frame.time
                case .timedOut:
                    if stopAt != nil {
                        endedByTime = true
                        break recording
                    }
                    throw noFrame(deadline: deadline)
                case .ended, .busy:
                    throw streamEnded()
                }
            }
        } catch {
            failure = error
        }
        let count = writer.frameCount
        let duration: Double
        if endedByTime, let seconds {
            duration = seconds
        } else if count >= 2, lastTime > start {
            duration = (lastTime - start) * Double(count) / Double(count - 1)
        } else {
            duration = max(MonotonicClock.now() - start, Double(count) / 30)
        }
        do {
            try writer.finish(seconds: duration)
        } catch {
            throw failure ?? error
        }
        if let failure { throw failure }
        if let ffmpeg {
            try await Self.transcode(ffmpeg: ffmpeg, from: aviPath, to: path)
        }
        return RecordingResult(frames: count, seconds: duration, path: path, reachedSizeLimit: reachedLimit)
    }

    /// Fails early (before recording) when `path` cannot be created.
    static func checkWritable(_ path: String) throws(NanoKVMError) {
        guard !path.isEmpty, !path.utf8.contains(0) else { throw NanoKVMError(.usage, "invalid file name '\(path)'") }
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileOutput.failure("cannot write", path) }
        close(fd)
    }

    static func transcode(ffmpeg: String, from avi: String, to mp4: String) async throws(NanoKVMError) {
        let arguments = [
            "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", avi, "-an", "-pix_fmt", "yuv420p",
            "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-movflags", "+faststart", mp4,
        ]
        let (status, errors) = try await ExternalProcess.run(ffmpeg, arguments)
        guard status == 0 else {
            let detail = errors.split(separator: "\n").last.map(String.init) ?? "exit status \(status)"
            throw NanoKVMError(.usage, "ffmpeg could not write \(mp4): \(detail)")
        }
    }
}

/// Running a helper program (ffmpeg) without Foundation: posix_spawn, stderr collected,
/// polled with `waitpid(WNOHANG)` so no thread blocks; cancellation terminates it.
enum ExternalProcess {
    /// The executable `name` in `$PATH`, if any.
    static func find(_ name: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = "\(directory)/\(name)"
            var info = stat()
            if access(candidate, X_OK) == 0, stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG { return candidate }
        }
        return nil
    }

    /// A new empty file in `$TMPDIR` (or /tmp) ending in `suffix`.
    static func temporaryPath(suffix: String) throws(NanoKVMError) -> String {
        let directory = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(directory)/kvmlua-XXXXXX\(suffix)".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemps(base, Int32(suffix.utf8.count))
        }
        guard fd >= 0 else { throw FileOutput.failure("cannot create a temporary file in", directory) }
        close(fd)
        return template.withUnsafeBufferPointer { buffer in buffer.baseAddress.map { String(cString: $0) } ?? "" }
    }

    /// Runs `executable` with `arguments` (stdin /dev/null, stdout discarded) and returns its
    /// exit status and standard error.
    static func run(_ executable: String, _ arguments: [String]) async throws(NanoKVMError) -> (status: Int32, stderr: String) {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw FileOutput.failure("cannot start", executable) }
        let readEnd = pipeFDs[0]
        let writeEnd = pipeFDs[1]
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        posix_spawn_file_actions_addclose(&actions, readEnd)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            errno = spawned
            throw FileOutput.failure("cannot start", executable)
        }
        defer { close(readEnd) }

        var errors: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        func drain() {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                guard n > 0 else { return }
                if errors.count < 64 << 10 { errors += buffer[0..<n] }
            }
        }
        var status: Int32 = 0
        while true {
            drain()
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { break }
            if result < 0 && errno != EINTR { break }
            if Task.isCancelled {
                kill(pid, SIGTERM)
                _ = waitpid(pid, &status, 0)
                throw NanoKVMError(.cancelled, "cancelled")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        drain()
        // WIFEXITED / WEXITSTATUS are macros: exit code in bits 8…15 when the low 7 bits are 0.
        let exitCode: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (exitCode, String(decoding: errors, as: UTF8.self))
    }
}
