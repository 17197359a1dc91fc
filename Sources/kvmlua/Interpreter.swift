import CLua
import CLuaRuntime
import KVMLua
import LuaBridge
import NanoKVM

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the command line the way lua.c's `pmain` does (contract §1), on one Lua runtime.
final class Interpreter {
    let runtime: LuaRuntime
    let arguments: [String]
    let options: CommandLineOptions
    /// Prefix of error messages; nil inside the REPL (lua.c drops it there).
    var programName: String?
    var inREPL = false

    var L: OpaquePointer { runtime.L }

    init(runtime: LuaRuntime, arguments: [String], options: CommandLineOptions) {
        self.runtime = runtime
        self.arguments = arguments
        self.options = options
        self.programName = options.programName
    }

    // MARK: lua.c's helpers

    /// Prints `message` to kvm_stderr() with the program name in front (when there is one).
    func message(_ text: String) {
        var line = ""
        if let programName { line += "\(programName): " }
        line += text
        if inREPL, Output.stdoutIsTerminal, Output.colourAllowed {
            line = Colour.red + line + Colour.reset
        }
        Output.error(line + "\n")
    }

    /// Reports a failed status: the message on top of the stack, popped.
    @discardableResult
    func report(_ status: Int32) -> Int32 {
        guard status != LUA_OK else { return status }
        let text: String
        if lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER {
            var length = 0
            let pointer = lua_tolstring(L, -1, &length)
            text = pointer.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""
        } else {
            text = "(error message not a string)"
        }
        message(text)
        kvm_lua_pop(L, 1)
        return status
    }

    /// Calls the function below `argumentCount` arguments with the message handler and
    /// the SIGINT handler installed (lua.c's docall).
    func call(_ argumentCount: Int32, results: Int32) -> Int32 {
        let base = lua_gettop(L) - argumentCount
        if inREPL { lua_pushcclosure(L, kvm_msghandler_brief, 0) } else { lua_pushcclosure(L, kvm_msghandler, 0) }
        kvm_lua_insert(L, base)
        kvm_sigint_arm(L, runtime.scheduler.wakeFD)
        let status = kvm_lua_pcall(L, argumentCount, results, base)
        kvm_sigint_disarm()
        kvm_lua_remove(L, base)
        return status
    }

    func runChunk(loadStatus: Int32) -> Int32 {
        var status = loadStatus
        if status == LUA_OK { status = call(0, results: 0) }
        return report(status)
    }

    func runFile(_ path: String?) -> Int32 {
        runChunk(loadStatus: luaL_loadfilex(L, path, nil))
    }

    func runString(_ code: String, chunkName: String) -> Int32 {
        runChunk(loadStatus: runtime.load(Array(code.utf8), chunkName: chunkName))
    }

    /// `-l g=mod`, `-l mod`, and (5.4.8) `-l mod-v2` which sets the global `mod`.
    func requireLibrary(_ specification: String) -> Int32 {
        var globalName = specification
        let moduleName: String
        if let equals = specification.firstIndex(of: "=") {
            globalName = String(specification[..<equals])
            moduleName = String(specification[specification.index(after: equals)...])
        } else {
            moduleName = specification
            if let dash = specification.firstIndex(of: "-") { globalName = String(specification[..<dash]) }
        }
        lua_getglobal(L, "require")
        LuaStack(L).push(string: moduleName)
        let status = call(1, results: 1)
        if status == LUA_OK { lua_setglobal(L, globalName) }
        return report(status)
    }

    func printVersion() {
        Output.out(String(cString: kvm_lua_copyright()))
        Output.out("\n")
        fflush(kvm_stdout())
    }

    /// The `arg` table: the script at index 0, its arguments above, the rest below.
    func createArgumentTable() {
        let script = options.scriptIndex
        let count = arguments.count
        lua_createtable(L, Int32(max(0, count - (script + 1))), Int32(script + 1))
        for (i, argument) in arguments.enumerated() {
            LuaStack(L).push(string: argument)
            lua_rawseti(L, -2, lua_Integer(i - script))
        }
        lua_setglobal(L, "arg")
    }

    func handleInitVariable() -> Int32 {
        var name = String(cString: kvm_lua_initvarversion())
        var value = getenv(name)
        if value == nil {
            name = String(cString: kvm_lua_init_var())
            value = getenv(name)
        }
        guard let value else { return LUA_OK }
        let text = String(cString: value)
        if text.hasPrefix("@") { return runFile(String(text.dropFirst())) }
        return runString(text, chunkName: "=" + name)
    }

    func runActions() -> Bool {
        for action in options.actions {
            switch action {
            case let .execute(code):
                if runString(code, chunkName: "=(command line)") != LUA_OK { return false }
            case let .require(library):
                if requireLibrary(library) != LUA_OK { return false }
            case .warningsOn:
                lua_warning(L, "@on", 0)
            }
        }
        return true
    }

    /// Pushes `arg[1..#arg]`; throws when `arg` is not a table.
    func pushScriptArguments() throws(LuaRuntimeError) -> Int32 {
        lua_getglobal(L, "arg")
        guard lua_type(L, -1) == LUA_TTABLE else {
            kvm_lua_pop(L, 1)
            throw LuaRuntimeError("'arg' is not a table")
        }
        let count = Int32(clamping: lua_rawlen(L, -1))
        guard lua_checkstack(L, count + 3) != 0 else {
            kvm_lua_pop(L, 1)
            throw LuaRuntimeError("stack overflow (too many arguments to script)")
        }
        if count > 0 {
            for i in 1...count { lua_rawgeti(L, -Int32(i), lua_Integer(i)) }
        }
        kvm_lua_remove(L, -(count + 1))
        return count
    }

    func handleScript() throws(LuaRuntimeError) -> Int32 {
        let index = options.scriptIndex
        let name = arguments[index]
        let fromStdin = name == "-" && arguments[index - 1] != "--"
        var status = luaL_loadfilex(L, fromStdin ? nil : name, nil)
        if status == LUA_OK {
            let count = try pushScriptArguments()
            status = call(count, results: kvm_lua_multret())
        }
        return report(status)
    }

    /// Waits for tasks still running at the end of a script; reports failures nobody saw.
    /// Returns false if there were any.
    func finishTasks() -> Bool {
        let scheduler = runtime.scheduler
        if !scheduler.liveTasks.isEmpty {
            kvm_sigint_arm(L, scheduler.wakeFD)
            scheduler.run(until: { scheduler.liveTasks.isEmpty })
            kvm_sigint_disarm()
        }
        let failures = scheduler.takeUnobservedFailures()
        for task in failures { reportTaskFailure(task) }
        return failures.isEmpty
    }

    /// Prints a task's error the way the message handler prints a chunk's.
    func reportTaskFailure(_ task: LuaTask) {
        guard let error = task.error else { return }
        error.ref.push(on: L)
        let (description, isKVMError) = describeError(at: -1)
        kvm_lua_pop(L, 1)
        var text = description
        // As for chunks: the REPL shows a kvm.Error as one line, everything else gets a traceback.
        if let traceback = error.traceback, !(inREPL && isKVMError) { text += "\n" + traceback }
        message("task \(task.id) failed: " + text)
    }

    /// The text the message handler would give for the error value at `index`.
    func describeError(at index: Int32, withPosition: Bool = true) -> (text: String, isKVMError: Bool) {
        let value = lua_absindex(L, index)
        let stack = LuaStack(L)
        switch stack.type(at: value) {
        case .string, .number:
            return (stack.string(at: value) ?? String(lua_tonumberx(L, value, nil)), false)
        default:
            break
        }
        var isKVMError = false
        var hasToString = false
        if lua_getmetatable(L, value) != 0 {
            kvm_luaL_getmetatable(L, "kvm.Error")
            isKVMError = lua_rawequal(L, -1, -2) != 0
            kvm_lua_pop(L, 1)
            hasToString = stack.rawField(-1, "__tostring") != .nil
            kvm_lua_pop(L, 2)
        }
        guard hasToString, kvm_tolstring_protected(L, value) == LUA_OK, let text = stack.string(at: -1) else {
            if hasToString { kvm_lua_pop(L, 1) }
            return ("(error object is a \(stack.type(at: value).name) value)", false)
        }
        kvm_lua_pop(L, 1)
        var prefix = ""
        if isKVMError, withPosition {
            if stack.rawField(value, "where") == .string { prefix = stack.string(at: -1) ?? "" }
            kvm_lua_pop(L, 1)
        }
        return (prefix + text, isKVMError)
    }

    /// `--device` / `--sim`: connects and sets the global `dev`; a failure is one line.
    func bindDevice() -> Bool {
        guard options.device != nil || options.simulator != nil else { return true }
        if options.device != nil, options.simulator != nil {
            message("use either --device or --sim, not both")
            return false
        }
        runtime.pushGlobal("kvm")
        let stack = LuaStack(L)
        stack.rawField(-1, options.simulator != nil ? "sim" : "connect")
        kvm_lua_remove(L, -2)
        if let generation = options.simulator {
            lua_createtable(L, 0, 2)
            stack.push(string: generation)
            stack.setRawField(-2, "generation")
            // Users of --sim see the machine that boots; kvm.sim() alone keeps the minimal console.
            stack.push(string: "machine")
            stack.setRawField(-2, "scene")
        } else {
            stack.push(string: options.device ?? "")
            lua_createtable(L, 0, 1)
            if options.insecure {
                lua_pushboolean(L, 1)
                stack.setRawField(-2, "insecure")
            }
        }
        let argumentCount: Int32 = options.simulator != nil ? 1 : 2
        kvm_sigint_arm(L, runtime.scheduler.wakeFD)
        let status = kvm_lua_pcall(L, argumentCount, 1, 0)
        kvm_sigint_disarm()
        guard status == LUA_OK else {
            message(describeError(at: -1, withPosition: false).text)
            kvm_lua_pop(L, 1)
            return false
        }
        runtime.setGlobal("dev")
        return true
    }

    /// `--play FILE`: plays the macro on `dev` (from --device, --sim or $KVMLUA_DEVICE) and
    /// ends; a failure is one line.
    func playMacro(_ path: String) -> Bool {
        let code = """
            local path = ...
            local device = dev or kvm.connect()
            kvm.macro.load(path):play(device)
            """
        guard runtime.load(code, chunkName: "=--play") == LUA_OK else { return false }
        LuaStack(L).push(string: path)
        kvm_sigint_arm(L, runtime.scheduler.wakeFD)
        let status = kvm_lua_pcall(L, 1, 0, 0)
        kvm_sigint_disarm()
        guard status == LUA_OK else {
            message(describeError(at: -1, withPosition: false).text)
            kvm_lua_pop(L, 1)
            return false
        }
        return finishTasks()
    }

    // MARK: pmain

    /// The whole run, called in protected mode. Returns true when everything succeeded.
    func main() throws(LuaRuntimeError) -> Bool {
        if let bad = options.badOption {
            Output.error("\(options.programName): \(CommandLineOptions.badOptionMessage(bad))\n")
            Output.error(CommandLineOptions.usage(programName: options.programName))
            return false
        }
        if options.help {
            Output.out(CommandLineOptions.usage(programName: options.programName))
            fflush(kvm_stdout())
            return true
        }
        if options.showVersion {
            Output.out("kvmlua \(KVMModule.version)\n")
            printVersion()
            return true
        }
        if let generate = options.generate, generate != .manPage { return printGenerated(generate) }
        if options.version { printVersion() }
        if options.ignoreEnvironment {
            lua_pushboolean(L, 1)
            lua_setfield(L, kvm_lua_registryindex(), "LUA_NOENV")
        }
        runtime.openStandardLibraries()
        Pretty.captureOriginalPrint(runtime)
        try KVMModule.install(in: runtime)
        try HelpBindings.install(in: runtime)
        if let generate = options.generate { return printGenerated(generate) }
        if options.sandbox { try Sandbox.apply(to: runtime) }
        createArgumentTable()
        if let name = options.layout {
            do { try LayoutBindings.setCommandLineLayout(name) } catch {
                message("--layout: \(error.message)")
                return false
            }
        }
        let fleet: [FleetTarget]?
        do { fleet = try fleetTargets() } catch {
            message(error.message)
            return false
        }
        if let fleet { return try runFleet(fleet) }
        if !bindDevice() { return false }
        if let macro = options.play { return playMacro(macro) }
        _ = kvm_lua_gc_restart(L)
        _ = kvm_lua_gc_generational(L)
        if !options.ignoreEnvironment, handleInitVariable() != LUA_OK { return false }
        if !runActions() { return false }
        if options.scriptIndex > 0 {
            if try handleScript() != LUA_OK { return false }
        }
        if options.interactive {
            runREPL()
        } else if options.scriptIndex < 1 && !options.hasExecute && !options.version {
            if Output.stdinIsTerminal {
                printVersion()
                runREPL()
            } else {
                // Decision X6: an error in a script read from a pipe exits 1 (lua.c exits 0).
                if runFile(nil) != LUA_OK { return false }
                return finishTasks()
            }
        } else {
            return finishTasks()
        }
        return true
    }

    /// The hidden options `--man`, `--bash-completion` and `--list-profiles`.
    func printGenerated(_ generate: CommandLineOptions.Generated) -> Bool {
        switch generate {
        case .manPage:
            Output.out(Manual.page(runtime: runtime))
        case .bashCompletion:
            Output.out(BashCompletion.script)
        case .profileNames, .groupNames:
            let (names, error) = generate == .profileNames ? BashCompletion.profileNames() : BashCompletion.groupNames()
            for name in names { Output.out(name + "\n") }
            if let error {
                fflush(kvm_stdout())
                message(error)
                return false
            }
        }
        fflush(kvm_stdout())
        return true
    }

    func runREPL() {
        let repl = REPL(interpreter: self)
        repl.run()
    }
}
