import CLua
import CLuaRuntime
import KVMLua
import LuaBridge

#if canImport(Glibc)
    import Glibc
#endif

// kvmlua: the `lua` command (contract: ../shared/lua-cli-contract.md) with the `kvm` module.

let arguments = CommandLine.arguments
let options = CommandLineOptions.parse(arguments)

let runtime: LuaRuntime
do {
    runtime = try LuaRuntime()
} catch {
    Output.error("\(options.programName): cannot create state: not enough memory\n")
    exit(1)
}
_ = kvm_lua_gc_stop(runtime.L)
kvm_set_before_exit { OpenDevices.releaseAllAtExit() }
let interpreter = Interpreter(runtime: runtime, arguments: arguments, options: options)

// Everything runs inside one protected call, as lua.c's pmain does: errors raised there are
// reported, and tracebacks end in the same "[C]: in ?" frame.
let mainSpec = LuaFunctionSpec("kvmlua.main", "", body: { call in
    let succeeded = try interpreter.main()
    return call.returning(.bool(succeeded))
})
runtime.push(function: mainSpec, documented: false)
let status = kvm_lua_pcall(runtime.L, 0, 1, 0)
let succeeded = lua_toboolean(runtime.L, -1) != 0
interpreter.programName = options.programName
interpreter.report(status)
runtime.close()
// kvm_exit_now, not exit(): see its comment (library destructors racing other threads).
kvm_exit_now(succeeded && status == LUA_OK ? 0 : 1)
