import CLua

/// Lua's basic types.
public enum LuaType: Int32, Sendable {
    case none = -1
    case `nil` = 0
    case boolean = 1
    case lightUserdata = 2
    case number = 3
    case string = 4
    case table = 5
    case function = 6
    case userdata = 7
    case thread = 8

    public var name: String {
        switch self {
        case .none: return "no value"
        case .nil: return "nil"
        case .boolean: return "boolean"
        case .lightUserdata, .userdata: return "userdata"
        case .number: return "number"
        case .string: return "string"
        case .table: return "table"
        case .function: return "function"
        case .thread: return "thread"
        }
    }
}

/// A plain value that can travel between threads and becomes a Lua value on the Lua
/// thread: what async operations return.
public enum LuaData: Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    /// A Lua string made of arbitrary bytes.
    case bytes([UInt8])
    /// A sequence 1..n.
    case array([LuaData])
    /// A table with these fields, set in this order.
    case table([(key: LuaData, value: LuaData)])
    /// A Swift object as userdata of its registered type.
    case object(any LuaSendableObject)

    public static func int(_ value: Int) -> LuaData { .integer(Int64(value)) }
    public static func fields(_ pairs: KeyValuePairs<String, LuaData>) -> LuaData {
        .table(pairs.map { (key: LuaData.string($0.key), value: $0.value) })
    }
}

/// Raw, non-raising access to values on a Lua stack. A thin wrapper: it never calls a Lua
/// function that can raise an error (see DEVELOPERS.md).
public struct LuaStack {
    public let L: OpaquePointer
    public init(_ L: OpaquePointer) { self.L = L }

    public var top: Int32 { lua_gettop(L) }
    public func type(at index: Int32) -> LuaType { LuaType(rawValue: lua_type(L, index)) ?? .none }
    public func pop(_ n: Int32 = 1) { kvm_lua_pop(L, n) }
    public func absolute(_ index: Int32) -> Int32 { lua_absindex(L, index) }

    /// Makes room for `n` more values; false when Lua cannot grow the stack.
    public func ensure(_ n: Int32) -> Bool { lua_checkstack(L, n) != 0 }

    /// The bytes of the string at `index`; numbers are not converted.
    public func bytes(at index: Int32) -> [UInt8]? {
        guard lua_type(L, index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let pointer = lua_tolstring(L, index, &length) else { return nil }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    /// The string at `index` decoded as UTF-8 (invalid sequences repaired); numbers are not converted.
    public func string(at index: Int32) -> String? {
        guard lua_type(L, index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let pointer = lua_tolstring(L, index, &length) else { return nil }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    public func isInteger(at index: Int32) -> Bool { lua_isinteger(L, index) != 0 }

    public func push(_ data: LuaData) {
        switch data {
        case .null: lua_pushnil(L)
        case let .bool(b): lua_pushboolean(L, b ? 1 : 0)
        case let .integer(i): lua_pushinteger(L, lua_Integer(i))
        case let .number(d): lua_pushnumber(L, d)
        case let .string(s): push(string: s)
        case let .bytes(b): push(bytes: b)
        case let .array(items):
            lua_createtable(L, Int32(clamping: items.count), 0)
            for (n, item) in items.enumerated() {
                _ = ensure(4)
                push(item)
                lua_rawseti(L, -2, lua_Integer(n + 1))
            }
        case let .table(pairs):
            lua_createtable(L, 0, Int32(clamping: pairs.count))
            for pair in pairs {
                _ = ensure(4)
                if case .null = pair.key { continue }
                push(pair.key)
                push(pair.value)
                lua_rawset(L, -3)
            }
        case let .object(object):
            if let runtime = LuaRuntime.owning(L) {
                runtime.push(object: object, on: L)
            } else {
                lua_pushnil(L)
            }
        }
    }

    public func push(string: String) {
        var text = string
        text.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { _ = lua_pushlstring(L, $0.baseAddress, $0.count) }
        }
    }

    public func push(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { _ = lua_pushlstring(L, $0.baseAddress, $0.count) }
        }
    }

    /// Raw field read of the table at `table`: pushes the value, returns its type.
    @discardableResult
    public func rawField(_ table: Int32, _ name: String) -> LuaType {
        let t = absolute(table)
        push(string: name)
        return LuaType(rawValue: lua_rawget(L, t)) ?? .none
    }

    /// Raw field write: `t[name] = value on top` (popped).
    public func setRawField(_ table: Int32, _ name: String) {
        let t = absolute(table)
        push(string: name)
        kvm_lua_insert(L, -2)
        lua_rawset(L, t)
    }
}

/// A reference to a Lua value kept alive in the registry. Lua-thread only.
public final class LuaRef {
    private weak var runtime: LuaRuntime?
    private var reference: Int32

    /// Pops the value on top of `L` and keeps it.
    public init(popping L: OpaquePointer) {
        runtime = LuaRuntime.owning(L)
        reference = luaL_ref(L, kvm_lua_registryindex())
    }

    /// Keeps the value at `index` (the stack is unchanged).
    public convenience init(at index: Int32, on L: OpaquePointer) {
        lua_pushvalue(L, index)
        self.init(popping: L)
    }

    public var isValid: Bool { runtime.map { !$0.isClosed } ?? false && reference != LUA_NOREF }

    /// Pushes the value (nil if the runtime is gone).
    public func push(on L: OpaquePointer) {
        if isValid, reference != LUA_REFNIL {
            lua_rawgeti(L, kvm_lua_registryindex(), lua_Integer(reference))
        } else {
            lua_pushnil(L)
        }
    }

    deinit {
        if let runtime, !runtime.isClosed, reference != LUA_NOREF, reference != LUA_REFNIL {
            luaL_unref(runtime.L, kvm_lua_registryindex(), reference)
        }
    }
}
