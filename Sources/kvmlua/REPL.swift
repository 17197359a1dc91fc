import CLua
import CLuaRuntime
import CReadline
import KVMLua
import LuaBridge

#if canImport(Glibc)
    import Glibc
#endif

/// What one prompt produced.
enum InputLine {
    case line(String)
    case endOfInput
    /// Ctrl-C at the prompt: the line (and any unfinished statement) is dropped.
    case cancelled
}

/// State the readline C callbacks reach (they cannot capture); the Lua thread only.
enum ReadlineBridge {
    nonisolated(unsafe) static var pendingLine: InputLine?
    nonisolated(unsafe) static var handlerInstalled = false
}

private func lineHandler(_ line: UnsafeMutablePointer<CChar>?) {
    if let line {
        ReadlineBridge.pendingLine = .line(String(cString: line))
        free(line)
    } else {
        ReadlineBridge.pendingLine = .endOfInput
    }
    // One line per prompt: stop reading until the REPL asks for the next one.
    rl_callback_handler_remove()
    ReadlineBridge.handlerInstalled = false
}

/// The read-eval-print loop of contract §1.6 with the additions of §2: persistent history,
/// completion, pretty-printed tables, `_`, colour, Ctrl-C cancelling the line, and tasks
/// that keep running while the prompt waits.
final class REPL {
    let interpreter: Interpreter
    let history: History
    let colour: Bool
    let backgroundOutput = BackgroundOutput()
    var runtime: LuaRuntime { interpreter.runtime }
    var L: OpaquePointer { interpreter.L }

    init(interpreter: Interpreter) {
        self.interpreter = interpreter
        self.history = History()
        self.colour = Output.stdoutIsTerminal && Output.colourAllowed
    }

    func run() {
        let savedName = interpreter.programName
        interpreter.programName = nil
        interpreter.inREPL = true
        setUpReadline()
        history.load()
        runtime.scheduler.onUnobservedFailure = { [unowned self] task in
            self.runtime.scheduler.markObserved(task)
            self.interpreter.reportTaskFailure(task)
        }
        for task in runtime.scheduler.takeUnobservedFailures() { interpreter.reportTaskFailure(task) }
        while true {
            guard let status = loadLine() else { break }
            var result = status
            if result == LUA_OK { result = interpreter.call(0, results: kvm_lua_multret()) }
            if result == LUA_OK { printResults() } else { interpreter.report(result) }
        }
        lua_settop(L, 0)
        Output.out("\n")
        fflush(kvm_stdout())
        runtime.scheduler.onUnobservedFailure = nil
        interpreter.inREPL = false
        interpreter.programName = savedName
    }

    private func setUpReadline() {
        // SIGINT stays ours (rl_catch_signals = 0): it cancels the line (decision S3).
        kvm_rl_configure(strdup("kvmlua"), attemptCompletion, strdup(" \t\n\"'`@$><=;|&{(,+-*/%^~#"))
        Completion.runtime = runtime
    }

    // MARK: Reading

    /// The prompt: `_PROMPT`/`_PROMPT2` through tostring each time, or the defaults.
    private func prompt(firstLine: Bool) -> String {
        let name = firstLine ? "_PROMPT" : "_PROMPT2"
        let fallback = firstLine ? "> " : ">> "
        runtime.pushGlobal(name)
        defer { kvm_lua_pop(L, 1) }
        if lua_type(L, -1) == LUA_TNIL { return fallback }
        guard kvm_tolstring_protected(L, -1) == LUA_OK, let text = LuaStack(L).string(at: -1) else {
            interpreter.report(LUA_ERRRUN)
            return fallback
        }
        kvm_lua_pop(L, 1)
        return text
    }

    /// Shows the prompt and reads one line while tasks keep running.
    private func readLine(prompt: String) -> InputLine {
        ReadlineBridge.pendingLine = nil
        // readline() clears its end-of-input flag for each line; the callback interface does
        // not, and with bracketed paste on it prints a newline at the end of every line read
        // while the flag is set. Ctrl-D on a `>>` line sets it and the REPL goes on, so without
        // this every later result came one line down (`> 1+1` printed "\n2").
        kvm_rl_clear_eof()
        rl_callback_handler_install(prompt, lineHandler)
        ReadlineBridge.handlerInstalled = true
        let scheduler = runtime.scheduler
        kvm_sigint_arm_idle(scheduler.wakeFD)
        scheduler.interruptHandler = {
            // Ctrl-C at the prompt: drop the line, show a fresh prompt (decision S3).
            rl_callback_sigcleanup()
            rl_replace_line("", 0)
            rl_callback_handler_remove()
            ReadlineBridge.handlerInstalled = false
            Output.out("^C\n")
            fflush(kvm_stdout())
            ReadlineBridge.pendingLine = .cancelled
        }
        let idle = LuaIdleInput(
            fd: 0,
            onReadable: { rl_callback_read_char() },
            beforeTasks: { [backgroundOutput] in
                if ReadlineBridge.handlerInstalled { backgroundOutput.startCapture() }
            },
            afterTasks: { [backgroundOutput] in
                // Output of tasks that ran while the prompt was shown goes above the prompt,
                // which is then drawn again with what was typed so far.
                guard backgroundOutput.isCapturing else { return }
                let (out, err) = backgroundOutput.stopCapture()
                guard !out.isEmpty || !err.isEmpty, ReadlineBridge.handlerInstalled else { return }
                rl_clear_visible_line()
                fflush(kvm_stdout())
                BackgroundOutput.write(out, to: 1)
                BackgroundOutput.write(err, to: 2)
                rl_forced_update_display()
            })
        scheduler.run(until: { ReadlineBridge.pendingLine != nil }, idle: idle)
        scheduler.interruptHandler = nil
        kvm_sigint_disarm()
        if ReadlineBridge.handlerInstalled {
            rl_callback_handler_remove()
            ReadlineBridge.handlerInstalled = false
        }
        return ReadlineBridge.pendingLine ?? .endOfInput
    }

    /// Reads a statement (lua.c's loadline): nil at end of input, else the load status
    /// with the compiled chunk (or the error message) on the stack.
    private func loadLine() -> Int32? {
        lua_settop(L, 0)
        while true {
            switch readLine(prompt: prompt(firstLine: true)) {
            case .endOfInput:
                return nil
            case .cancelled:
                continue
            case let .line(typed):
                let line = typed.hasPrefix("=") ? "return " + typed.dropFirst() : typed
                // An expression first: `return <line>;`.
                let status = runtime.load(Array("return \(line);".utf8), chunkName: "=stdin")
                if status == LUA_OK {
                    if !typed.isEmpty { history.add(typed) }
                    return status
                }
                kvm_lua_pop(L, 1)
                guard let result = readStatement(first: line, typed: typed) else { continue }
                return result
            }
        }
    }

    /// Compiles `first` as a statement, reading continuation lines while the only problem
    /// is that it ends too early (`<eof>`). nil when Ctrl-C dropped it.
    private func readStatement(first: String, typed: String) -> Int32? {
        var buffer = first
        var typedBuffer = typed
        while true {
            let status = runtime.load(Array(buffer.utf8), chunkName: "=stdin")
            guard isIncomplete(status) else {
                history.add(typedBuffer)
                return status
            }
            switch readLine(prompt: prompt(firstLine: false)) {
            case .endOfInput:
                // Decision R10 (5.4.8): report the real syntax error.
                history.add(typedBuffer)
                return status
            case .cancelled:
                kvm_lua_pop(L, 1)
                return nil
            case let .line(next):
                kvm_lua_pop(L, 1)
                buffer += "\n" + next
                typedBuffer += "\n" + next
            }
        }
    }

    private func isIncomplete(_ status: Int32) -> Bool {
        guard status == LUA_ERRSYNTAX, let message = LuaStack(L).string(at: -1) else { return false }
        return message.hasSuffix("<eof>")
    }

    // MARK: Printing

    /// Prints the results on the stack: through the global `print` when the script has
    /// replaced it (contract R7), else as `print` would, with tables pretty-printed.
    private func printResults() {
        let count = lua_gettop(L)
        guard count > 0 else { return }
        guard lua_checkstack(L, kvm_lua_minstack()) != 0 else {
            interpreter.message("too many results to print")
            return
        }
        // `_` holds the last result.
        lua_pushvalue(L, 1)
        runtime.setGlobal("_")

        runtime.pushGlobal("print")
        let printIsOriginal = Pretty.isOriginalPrint(runtime, at: -1)
        if printIsOriginal {
            kvm_lua_pop(L, 1)
            Pretty.pushFormatter(runtime)
            kvm_lua_insert(L, 1)
            lua_pushboolean(L, colour ? 1 : 0)
            kvm_lua_insert(L, 2)
            if kvm_lua_pcall(L, count + 1, 1, 0) == LUA_OK, let text = LuaStack(L).bytes(at: -1) {
                text.withUnsafeBufferPointer { _ = fwrite($0.baseAddress, 1, $0.count, kvm_stdout()) }
                Output.out("\n")
                fflush(kvm_stdout())
                kvm_lua_pop(L, 1)
                return
            }
            let message = LuaStack(L).string(at: -1) ?? "?"
            kvm_lua_pop(L, 1)
            interpreter.message("error calling 'print' (\(message))")
            return
        }
        kvm_lua_insert(L, 1)
        if kvm_lua_pcall(L, count, 0, 0) != LUA_OK {
            let message = LuaStack(L).string(at: -1) ?? "(error object is not a string)"
            kvm_lua_pop(L, 1)
            interpreter.message("error calling 'print' (\(message))")
        }
    }
}

/// Captures what tasks write to stdout/stderr while the prompt is shown (fd 1 and 2 point
/// to temporary files meanwhile), so the REPL can put it above the prompt and redraw only
/// when there was output.
final class BackgroundOutput {
    private let files: (out: Int32, err: Int32)
    private var saved: (out: Int32, err: Int32)?

    init() {
        files = (Self.temporaryFile(), Self.temporaryFile())
    }

    deinit {
        if files.out >= 0 { close(files.out) }
        if files.err >= 0 { close(files.err) }
    }

    private static func temporaryFile() -> Int32 {
        guard let file = tmpfile() else { return -1 }
        return dup(fileno(file))  // the FILE itself stays open; the descriptor is what we use
    }

    var isCapturing: Bool { saved != nil }

    func startCapture() {
        guard saved == nil, files.out >= 0, files.err >= 0 else { return }
        fflush(kvm_stdout())
        fflush(kvm_stderr())
        let out = dup(1)
        let err = dup(2)
        guard out >= 0, err >= 0 else { return }
        saved = (out, err)
        _ = dup2(files.out, 1)
        _ = dup2(files.err, 2)
    }

    /// Restores stdout/stderr and returns what was written meanwhile.
    func stopCapture() -> (out: [UInt8], err: [UInt8]) {
        guard let saved else { return ([], []) }
        fflush(kvm_stdout())
        fflush(kvm_stderr())
        _ = dup2(saved.out, 1)
        _ = dup2(saved.err, 2)
        close(saved.out)
        close(saved.err)
        self.saved = nil
        return (Self.takeContents(files.out), Self.takeContents(files.err))
    }

    private static func takeContents(_ fd: Int32) -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        _ = lseek(fd, 0, SEEK_SET)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            data += buffer[0..<count]
        }
        _ = ftruncate(fd, 0)
        _ = lseek(fd, 0, SEEK_SET)
        return data
    }

    static func write(_ bytes: [UInt8], to fd: Int32) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
