import CLua
import CLuaRuntime

/// One Lua universe (a `lua_State` and its coroutines) and the scheduler that drives it.
///
/// Everything here runs on the Lua thread, the thread that created the runtime; nothing
/// may be called from another thread except through `LuaOperation.poster`.
public final class LuaRuntime {
    /// The main thread of the Lua state.
    public let L: OpaquePointer
    public private(set) lazy var scheduler = LuaScheduler(runtime: self)

    /// Converts a Swift error into a Lua error value on the stack of `L` (one value pushed).
    /// The default pushes a string; the `kvm` module installs one that builds `kvm.Error`.
    public var errorPresenter: (any Error, OpaquePointer) -> Void = LuaRuntime.defaultErrorPresenter

    /// Every function registered through `register`/`makeFunction`, with its documentation
    /// (deferred type registrations included: reading this runs them).
    public var functionSpecs: [LuaFunctionSpec] {
        registerPendingTypes()
        return recordedSpecs
    }
    private var recordedSpecs: [LuaFunctionSpec] = []

    /// Metatable names of registered userdata types (deferred ones included).
    var typeNames: [ObjectIdentifier: String] = [:]
    /// Types whose metatables are built on first use (see `deferRegistration`).
    var pendingTypes: Set<ObjectIdentifier> = []
    var pendingRegistrars: [() -> Void] = []

    static let functionBoxMetatable = "LuaBridge.FunctionBox"
    static let objectFieldsKey = "LuaBridge.ObjectFields"
    static let docsKey = "LuaBridge.Docs"

    public init() throws(LuaRuntimeError) {
        guard let state = luaL_newstate() else { throw LuaRuntimeError("cannot create a Lua state: not enough memory") }
        L = state
        kvm_lua_extraspace(L).pointee = Unmanaged.passUnretained(self).toOpaque()
        kvm_set_dispatcher(luaBridgeDispatch)
        setUpRegistry()
    }

    /// Closes the state, running pending finalizers (as `lua.c` does at a normal end).
    public func close() {
        guard !isClosed else { return }
        scheduler.shutdown()
        lua_close(L)
        isClosed = true
    }

    /// After `close()`, references must not touch the state any more.
    public private(set) var isClosed = false

    /// The runtime that owns `L` (any of its threads).
    public static func owning(_ L: OpaquePointer) -> LuaRuntime? {
        guard let raw = kvm_lua_extraspace(L).pointee else { return nil }
        return Unmanaged<LuaRuntime>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The standard libraries; `os.exit` ends the process through `kvm_exit_now` (see there).
    public func openStandardLibraries() {
        luaL_openlibs(L)
        lua_getglobal(L, "os")
        if lua_type(L, -1) == LUA_TTABLE {
            lua_pushcclosure(L, kvm_os_exit, 0)
            lua_setfield(L, -2, "exit")
        }
        kvm_lua_pop(L, 1)
    }

    private func setUpRegistry() {
        // Boxes of Swift closures: released by __gc.
        if luaL_newmetatable(L, Self.functionBoxMetatable) != 0 {
            lua_pushcclosure(L, releaseBoxedObject, 0)
            lua_setfield(L, -2, "__gc")
            lua_pushboolean(L, 1)
            lua_setfield(L, -2, Self.swiftMarker)
        }
        kvm_lua_pop(L, 1)
        // function -> documentation text, weak keys so docs never keep a function alive.
        kvm_lua_newtable(L)
        kvm_lua_newtable(L)
        lua_pushstring(L, "k")
        lua_setfield(L, -2, "__mode")
        lua_setmetatable(L, -2)
        lua_setfield(L, kvm_lua_registryindex(), Self.docsKey)
    }

    static func defaultErrorPresenter(_ error: any Error, _ L: OpaquePointer) {
        if let raised = error as? LuaRaisedValue, raised.ref.isValid {
            raised.ref.push(on: L)
            return
        }
        let message = (error as? LuaBridgeErrorDescribing)?.luaMessage ?? "\(error)"
        luaL_where(L, 1)
        lua_pushstring(L, message)
        lua_concat(L, 2)
    }

    /// Pushes the Lua error value for `error` (one value).
    public func pushError(_ error: any Error, on L: OpaquePointer) {
        if let raised = error as? LuaRaisedValue, raised.ref.isValid {
            raised.ref.push(on: L)
            return
        }
        errorPresenter(error, L)
    }

    // MARK: Globals and chunks

    /// Sets the global `name` to the value on top of the stack (popped).
    public func setGlobal(_ name: String) { lua_setglobal(L, name) }

    /// Pushes the global `name` (raw access to the globals table: no metamethods).
    public func pushGlobal(_ name: String) {
        kvm_lua_pushglobaltable(L)
        lua_pushstring(L, name)
        lua_rawget(L, -2)
        kvm_lua_remove(L, -2)
    }

    /// Loads `code` as a chunk named `chunkName`; pushes the function or the error message.
    @discardableResult
    public func load(_ code: [UInt8], chunkName: String, mode: String? = nil) -> Int32 {
        code.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                luaL_loadbufferx(L, chars.baseAddress, chars.count, chunkName, mode)
            }
        }
    }

    public func load(_ code: String, chunkName: String) -> Int32 { load(Array(code.utf8), chunkName: chunkName) }

    /// Runs `code` (a trusted chunk written in Swift sources) and leaves its results popped.
    /// Used for the small Lua preludes of the modules.
    public func runTrusted(_ code: String, chunkName: String, results: Int32 = 0) throws(LuaRuntimeError) {
        guard load(code, chunkName: chunkName) == LUA_OK else {
            let message = string(at: -1) ?? "?"
            kvm_lua_pop(L, 1)
            throw LuaRuntimeError("internal chunk \(chunkName) does not compile: \(message)")
        }
        if kvm_lua_pcall(L, 0, results, 0) != LUA_OK {
            let message = string(at: -1) ?? "?"
            kvm_lua_pop(L, 1)
            throw LuaRuntimeError("internal chunk \(chunkName) failed: \(message)")
        }
    }

    /// The string at `index` (no conversion of numbers, no metamethods).
    public func string(at index: Int32) -> String? { LuaStack(L).string(at: index) }

    // MARK: Documentation

    func recordDocumentation(for spec: LuaFunctionSpec) {
        recordedSpecs.append(spec)
        guard !spec.documentation.isEmpty else { return }
        // The function is on top of the stack. The registry maps it to its spec's index: the
        // help text is put together only when asked for (doing it for every function at start-up
        // cost a tenth of the start-up time).
        lua_getfield(L, kvm_lua_registryindex(), Self.docsKey)
        lua_pushvalue(L, -2)
        lua_pushinteger(L, lua_Integer(recordedSpecs.count - 1))
        lua_rawset(L, -3)
        kvm_lua_pop(L, 1)
    }

    /// The documentation text of the function at `index`, if it is a documented Swift function.
    public func documentation(ofFunctionAt index: Int32) -> String? {
        let absolute = lua_absindex(L, index)
        lua_getfield(L, kvm_lua_registryindex(), Self.docsKey)
        lua_pushvalue(L, absolute)
        lua_rawget(L, -2)
        var isNumber: Int32 = 0
        let position = Int(lua_tointegerx(L, -1, &isNumber))
        kvm_lua_pop(L, 2)
        guard isNumber != 0, recordedSpecs.indices.contains(position) else { return nil }
        return recordedSpecs[position].helpText
    }

    /// Attaches documentation to a function written in Lua (on top of the stack).
    public func document(functionOnTop spec: LuaFunctionSpec) {
        recordDocumentation(for: spec)
    }
}

/// `__gc` of every userdata that holds a retained Swift object.
private func releaseBoxedObject(_ L: OpaquePointer?) -> Int32 {
    guard let L, let raw = lua_touserdata(L, 1) else { return 0 }
    let slot = raw.assumingMemoryBound(to: UnsafeRawPointer?.self)
    if let object = slot.pointee {
        slot.pointee = nil
        Unmanaged<AnyObject>.fromOpaque(object).release()
    }
    return 0
}

let releaseBoxedObjectFunction: lua_CFunction = releaseBoxedObject
