import CLua
import CLuaRuntime
import LuaBridge
import NanoKVM

/// `kvm.Error`: every failure a script sees is a table with this metatable (see
/// ../shared/lua-api.md, "Errors"). Its `__tostring` is one line starting with `kvm: `.
enum KVMErrors {
    static let metatableName = "kvm.Error"

    /// Creates the metatable and tells the C message handler to recognise it.
    static func install(in runtime: LuaRuntime) {
        let L = runtime.L
        let stack = LuaStack(L)
        _ = luaL_newmetatable(L, metatableName)
        let metatable = lua_gettop(L)
        runtime.push(
            function: LuaFunctionSpec("kvm.Error.__tostring", "", body: { call in
                call.returning(.string(describe(tableAt: 1, on: call.L)))
            }), documented: false)
        stack.setRawField(metatable, "__tostring")
        kvm_set_error_metatable_key(metatableNameCString)
        runtime.errorPresenter = { error, L in push(error, on: L) }
        kvm_lua_pop(L, 1)
    }

    // A C string that lives as long as the process, for kvm_set_error_metatable_key.
    nonisolated(unsafe) static let metatableNameCString: UnsafePointer<CChar> = {
        let bytes = Array(metatableName.utf8CString)
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        buffer.initialize(from: bytes, count: bytes.count)
        return UnsafePointer(buffer)
    }()

    /// The one-line text of the kvm.Error table at `index`.
    static func describe(tableAt index: Int32, on L: OpaquePointer) -> String {
        let stack = LuaStack(L)
        guard stack.type(at: index) == .table else { return "kvm: error" }
        func field(_ name: String) -> String? {
            defer { stack.pop() }
            switch stack.rawField(index, name) {
            case .string: return stack.string(at: -1)
            case .number:
                return stack.isInteger(at: -1) ? String(lua_tointegerx(L, -1, nil)) : String(lua_tonumberx(L, -1, nil))
            default: return nil
            }
        }
        var error = NanoKVMError(
            NanoKVMError.Kind(rawValue: field("kind") ?? "") ?? .api, field("msg") ?? "error")
        error.code = field("code").flatMap { Int($0) }
        error.status = field("status").flatMap { Int($0) }
        error.method = field("method")
        error.path = field("path")
        return "kvm: \(error.description)"
    }

    /// Pushes the Lua error value for a Swift error: a kvm.Error table for everything with a
    /// kind, the raised value unchanged for Lua errors passing through Swift.
    static func push(_ error: any Error, on L: OpaquePointer) {
        if let raised = error as? LuaRaisedValue, raised.ref.isValid {
            raised.ref.push(on: L)
            return
        }
        let kvmError: NanoKVMError
        switch error {
        case let known as NanoKVMError:
            kvmError = known
        case let bridge as any LuaBridgeErrorDescribing:
            guard let kind = NanoKVMError.Kind(rawValue: bridge.luaKind) else {
                // An internal bridge failure: a plain Lua error string with the position.
                luaL_where(L, 1)
                LuaStack(L).push(string: bridge.luaMessage)
                lua_concat(L, 2)
                return
            }
            kvmError = NanoKVMError(kind, bridge.luaMessage)
        case is CancellationError:
            kvmError = NanoKVMError(.cancelled, "cancelled")
        default:
            kvmError = NanoKVMError(.api, "\(error)")
        }
        pushTable(for: kvmError, on: L)
    }

    /// Pushes a new kvm.Error table with `where` set to the Lua position of the caller.
    static func pushTable(for error: NanoKVMError, on L: OpaquePointer) {
        let stack = LuaStack(L)
        _ = stack.ensure(6)
        lua_createtable(L, 0, 8)
        let table = lua_gettop(L)
        stack.push(string: error.kind.rawValue)
        stack.setRawField(table, "kind")
        stack.push(string: error.message)
        stack.setRawField(table, "msg")
        if let code = error.code {
            lua_pushinteger(L, lua_Integer(code))
            stack.setRawField(table, "code")
        }
        if let status = error.status {
            lua_pushinteger(L, lua_Integer(status))
            stack.setRawField(table, "status")
        }
        if let method = error.method {
            stack.push(string: method)
            stack.setRawField(table, "method")
        }
        if let path = error.path {
            stack.push(string: path)
            stack.setRawField(table, "path")
        }
        if let device = error.device {
            stack.push(string: device)
            stack.setRawField(table, "device")
        }
        luaL_where(L, 1)
        stack.setRawField(table, "where")
        kvm_luaL_getmetatable(L, metatableName)
        lua_setmetatable(L, table)
    }
}
