import CLua
import LuaBridge

#if canImport(Glibc)
    import Glibc
#endif

/// The `kvm` Lua module: a global in every state and the value of `require "kvm"`.
/// Each area of the API adds its functions in its own file; this file puts them together.
public enum KVMModule {
    /// kvmlua's own version (`kvm.version`, `kvmlua --version`).
    public static let version = "0.1.0"

    /// Creates the `kvm` table in `runtime`, sets the global and `package.loaded.kvm`.
    public static func install(in runtime: LuaRuntime) throws(LuaRuntimeError) {
        let L = runtime.L
        let stack = LuaStack(L)
        KVMErrors.install(in: runtime)
        // The object types get their metatables on first use (see LuaRuntime.deferRegistration):
        // a script that never makes a device, frame, task or macro does not pay for them.
        runtime.deferRegistration(of: [(TaskHandle.self, TaskBindings.typeName)]) {
            TaskBindings.registerTaskType(in: runtime)
        }
        runtime.deferRegistration(of: DeviceBindings.objectTypes) {
            DeviceBindings.register(in: runtime)
            do {
                try InputBindings.installLuaParts(in: runtime)
                try VisionBindings.installLuaParts(in: runtime)
            } catch {
                // The chunk is a constant that the test suite loads; reaching this is a bug in it.
                fputs("kvmlua: internal error: \(error)\n", kvm_stderr())
            }
        }
        runtime.deferRegistration(of: [
            (FrameHandle.self, FrameHandle.typeName), (FrameIteratorHandle.self, FrameIteratorHandle.typeName),
        ]) {
            ScreenBindings.register(in: runtime)
        }
        runtime.deferRegistration(of: [(TextWaiterHandle.self, TextWaiterHandle.typeName), (NeedleHandle.self, NeedleHandle.typeName)]) {
            VisionBindings.register(in: runtime)
            NeedleBindings.register(in: runtime)
        }
        runtime.deferRegistration(of: [
            (MacroHandle.self, MacroHandle.typeName), (RecorderHandle.self, RecorderHandle.typeName),
        ]) {
            MacroBindings.register(in: runtime)
        }

        lua_createtable(L, 0, 16)
        let kvm = lua_gettop(L)
        runtime.register(ConcurrencyBindings.functions, inTableAt: kvm)
        runtime.register(ConnectBindings.functions, inTableAt: kvm)
        runtime.register(LayoutBindings.functions, inTableAt: kvm)

        runtime.push(function: TaskBindings.usageFunction, documented: false)
        stack.setRawField(kvm, "_usage")
        runtime.push(function: TaskBindings.optionProblemFunction, documented: false)
        stack.setRawField(kvm, "_option_problem")

        stack.push(string: version)
        stack.setRawField(kvm, "version")

        kvm_luaL_getmetatable(L, KVMErrors.metatableName)
        stack.setRawField(kvm, "Error")

        JSONBindings.pushModule(in: runtime)
        stack.setRawField(kvm, "json")

        MacroBindings.pushModule(in: runtime)
        stack.setRawField(kvm, "macro")

        NeedleBindings.pushModule(in: runtime)
        stack.setRawField(kvm, "needle")

        // Keep the module reachable for the Lua-written parts below and for `require`.
        lua_pushvalue(L, kvm)
        runtime.setGlobal("kvm")
        lua_getfield(L, kvm_lua_registryindex(), LUA_LOADED_TABLE)
        if lua_type(L, -1) == LUA_TTABLE {
            lua_pushvalue(L, kvm)
            stack.setRawField(-2, "kvm")
        }
        kvm_lua_pop(L, 2)

        try runtime.runTrusted(ConcurrencyBindings.luaPrelude, chunkName: "=kvm")
        ConcurrencyBindings.documentLuaFunctions(in: runtime)
        try FleetBindings.install(in: runtime)
    }

    /// Every documented function of the module, for `help` and the generated reference.
    public static func documentedFunctions(in runtime: LuaRuntime) -> [LuaFunctionSpec] {
        runtime.functionSpecs.filter { !$0.documentation.isEmpty }
    }
}
