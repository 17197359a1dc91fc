import CReadline
import KVMLua

#if canImport(Glibc)
    import Glibc
#endif

/// REPL history: readline's in-memory list plus a file that persists across sessions
/// (`$XDG_STATE_HOME/kvmlua/history`, 0600). Each entry is one line of the file with `\`
/// and newlines escaped, so multi-line statements come back as one entry.
final class History {
    static let limit = 1000
    let path: String?

    init() {
        let environment = { (name: String) -> String? in
            guard let value = getenv(name) else { return nil }
            let text = String(cString: value)
            return text.isEmpty ? nil : text
        }
        if let explicit = environment("KVMLUA_HISTORY") {
            path = explicit
        } else if let state = environment("XDG_STATE_HOME") {
            path = state + "/kvmlua/history"
        } else if let home = environment("HOME") {
            path = home + "/.local/state/kvmlua/history"
        } else {
            path = nil
        }
    }

    /// Loads the saved entries into readline's list (the last `limit` of them), and trims
    /// the file when it has grown well past the limit.
    func load() {
        stifle_history(Int32(Self.limit))
        guard let path, let data = readFile(path) else { return }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        let entries = lines.suffix(Self.limit).map { Self.decode(Array($0)) }
        for entry in entries { add_history(entry) }
        if lines.count > 2 * Self.limit { rewrite(entries) }
    }

    /// Adds an entry to this session's history, and to the file unless it looks secret.
    func add(_ entry: String) {
        guard !entry.isEmpty else { return }
        add_history(entry)
        guard let path, !Secrets.mustNotBeStored(entry) else { return }
        guard ensureDirectory(for: path) else { return }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = fchmod(fd, 0o600)
        writeAll(fd, Self.encode(entry) + [UInt8(ascii: "\n")])
    }

    static func encode(_ entry: String) -> [UInt8] {
        var out: [UInt8] = []
        for byte in entry.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            default: out.append(byte)
            }
        }
        return out
    }

    static func decode(_ line: [UInt8]) -> String {
        var out: [UInt8] = []
        var escaped = false
        for byte in line {
            if escaped {
                switch byte {
                case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
                default: out.append(byte)
                }
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func rewrite(_ entries: [String]) {
        guard let path else { return }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = fchmod(fd, 0o600)
        for entry in entries { writeAll(fd, Self.encode(entry) + [UInt8(ascii: "\n")]) }
        close(fd)
        _ = rename(temporary, path)
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }

    private func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            data += buffer[0..<count]
        }
        return data
    }

    /// Creates the parent directories (0700) when missing.
    private func ensureDirectory(for path: String) -> Bool {
        guard let slash = path.lastIndex(of: "/") else { return true }
        let directory = String(path[..<slash])
        if directory.isEmpty { return true }
        var current = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o700) != 0, errno != EEXIST { return false }
        }
        return true
    }
}
