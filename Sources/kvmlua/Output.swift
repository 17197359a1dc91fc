import CLua
#if canImport(Glibc)
    import Glibc
#endif

/// Output through C stdio, the same FILE objects Lua's `print` and `io.write` use, so that
/// the order and buffering of everything written match lua.c (see contract §1.9).
enum Output {
    static func out(_ text: String) {
        var text = text
        text.withUTF8 { buffer in _ = fwrite(buffer.baseAddress, 1, buffer.count, kvm_stdout()) }
    }

    static func outLine(_ text: String) {
        out(text)
        out("\n")
        fflush(kvm_stdout())
    }

    /// Errors, usage and warnings: kvm_stderr(), flushed at once (lua_writestringerror).
    static func error(_ text: String) {
        var text = text
        text.withUTF8 { buffer in _ = fwrite(buffer.baseAddress, 1, buffer.count, kvm_stderr()) }
        fflush(kvm_stderr())
    }

    static func error(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in _ = fwrite(buffer.baseAddress, 1, buffer.count, kvm_stderr()) }
        fflush(kvm_stderr())
    }

    static var stdinIsTerminal: Bool { isatty(0) != 0 }
    static var stdoutIsTerminal: Bool { isatty(1) != 0 }

    /// Colour only on a terminal and never when NO_COLOR is set to something (no-color.org).
    static var colourAllowed: Bool {
        if let noColor = getenv("NO_COLOR"), noColor.pointee != 0 { return false }
        if let term = getenv("TERM"), String(cString: term) == "dumb" { return false }
        return true
    }
}

/// ANSI colours used by the REPL when colour is on.
enum Colour {
    static let red = "\u{1B}[31m"
    static let green = "\u{1B}[32m"
    static let yellow = "\u{1B}[33m"
    static let blue = "\u{1B}[34m"
    static let magenta = "\u{1B}[35m"
    static let cyan = "\u{1B}[36m"
    static let dim = "\u{1B}[2m"
    static let reset = "\u{1B}[0m"
}
