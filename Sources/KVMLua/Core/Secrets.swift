import Synchronization

/// Texts the script marked as secret (`dev:type(text, {secret=true})`, passwords). They are
/// never logged, and the REPL does not save a history line that contains one.
public enum Secrets {
    private static let texts = Mutex<Set<String>>([])

    public static func register(_ text: String) {
        guard !text.isEmpty else { return }
        texts.withLock { _ = $0.insert(text) }
    }

    /// Whether `line` must stay out of history files: it contains a registered secret, or
    /// `password`, `passwd`, `secret` or `token` followed by `=` or `:` (any case).
    public static func mustNotBeStored(_ line: String) -> Bool {
        let lowered = Array(line.lowercased().utf8)
        for keyword in ["password", "passwd", "secret", "token"] {
            let word = Array(keyword.utf8)
            var start = 0
            while start + word.count <= lowered.count {
                if lowered[start..<(start + word.count)].elementsEqual(word) {
                    var next = start + word.count
                    while next < lowered.count, lowered[next] == UInt8(ascii: " ") || lowered[next] == UInt8(ascii: "\t") {
                        next += 1
                    }
                    if next < lowered.count, lowered[next] == UInt8(ascii: "=") || lowered[next] == UInt8(ascii: ":") {
                        return true
                    }
                }
                start += 1
            }
        }
        return texts.withLock { secrets in secrets.contains { line.contains($0) } }
    }
}
