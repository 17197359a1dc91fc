import CLua
import LuaBridge
import NanoKVM

/// `kvm.json`: Lua values <-> JSON text through the project's one JSON reader/writer
/// (`JSONValue` in the client library).
enum JSONBindings {
    static let nullMetatable = "kvm.json.null"
    static let arrayMetatable = "kvm.json.array"
    static let nullRegistryKey = "kvm.json.null.value"
    static let maxDepth = 200

    /// Pushes the `kvm.json` table.
    static func pushModule(in runtime: LuaRuntime) {
        let L = runtime.L
        let stack = LuaStack(L)

        // The null sentinel: an empty table whose metatable says what it is.
        lua_createtable(L, 0, 0)
        _ = luaL_newmetatable(L, nullMetatable)
        runtime.push(
            function: LuaFunctionSpec("kvm.json.null.__tostring", "", body: { call in call.returning(.string("null")) }),
            documented: false)
        stack.setRawField(-2, "__tostring")
        stack.push(string: "locked")
        stack.setRawField(-2, "__metatable")
        lua_setmetatable(L, -2)
        lua_pushvalue(L, -1)
        lua_setfield(L, kvm_lua_registryindex(), nullRegistryKey)

        // Marks tables that must be written as arrays even when empty.
        _ = luaL_newmetatable(L, arrayMetatable)
        kvm_lua_pop(L, 1)

        lua_createtable(L, 0, 4)
        let module = lua_gettop(L)
        runtime.register(functions, inTableAt: module)
        lua_pushvalue(L, -2)
        stack.setRawField(module, "null")
        kvm_lua_remove(L, -2)  // the sentinel
    }

    static var functions: [LuaFunctionSpec] {
        [
            LuaFunctionSpec(
                "kvm.json.encode", signature: "kvm.json.encode(value)", returns: "string",
                """
                JSON text of `value`. Tables whose keys are 1..n are arrays, other tables objects
                (string keys; integer keys are written as strings; keys are sorted). Empty tables
                are objects unless made with `kvm.json.array()`. `kvm.json.null` is null. Raises
                `usage` for functions, cycles, NaN or infinite numbers, and invalid UTF-8.
                """,
                body: { call in
                    guard call.count >= 1 else { throw call.typeError(1, expected: "value") }
                    var visiting = Set<UnsafeRawPointer>()
                    let value = try toJSON(call.L, index: 1, call: call, depth: 0, visiting: &visiting)
                    do throws(JSONWriteError) {
                        return call.returning(.string(try value.serialized()))
                    } catch {
                        throw call.argumentError(1, error.message)
                    }
                }),
            LuaFunctionSpec(
                "kvm.json.decode", signature: "kvm.json.decode(text)", returns: "value",
                """
                The Lua value of JSON `text`: objects and arrays become tables (arrays carry the
                `kvm.json.array` mark so they encode back as arrays), null becomes `kvm.json.null`,
                integers become Lua integers. Raises `usage` for text that is not JSON.
                """,
                body: { call in
                    let bytes = try call.bytes(1)
                    let value: JSONValue
                    do throws(JSONSyntaxError) {
                        value = try JSONValue.parse(bytes: bytes)
                    } catch {
                        throw call.argumentError(1, "invalid JSON: \(error.description)")
                    }
                    guard push(value, on: call.L) else { throw LuaRuntimeError("JSON too deeply nested for the Lua stack") }
                    return .values(1)
                }),
            LuaFunctionSpec(
                "kvm.json.array", signature: "kvm.json.array([t])", returns: "table",
                "Marks `t` (or a new empty table) so that `kvm.json.encode` writes it as an array, even when empty.",
                body: { call in
                    let L = call.L
                    if call.isNoneOrNil(1) { lua_createtable(L, 0, 0) } else {
                        _ = try call.requireTable(1)
                        lua_pushvalue(L, 1)
                    }
                    kvm_luaL_getmetatable(L, arrayMetatable)
                    lua_setmetatable(L, -2)
                    return .values(1)
                }),
        ]
    }

    static func isNull(_ L: OpaquePointer, _ index: Int32) -> Bool {
        let absolute = lua_absindex(L, index)
        lua_getfield(L, kvm_lua_registryindex(), nullRegistryKey)
        defer { kvm_lua_pop(L, 1) }
        return lua_rawequal(L, absolute, -1) != 0
    }

    static func hasArrayMark(_ L: OpaquePointer, _ index: Int32) -> Bool {
        guard lua_getmetatable(L, index) != 0 else { return false }
        kvm_luaL_getmetatable(L, arrayMetatable)
        defer { kvm_lua_pop(L, 2) }
        return lua_rawequal(L, -1, -2) != 0
    }

    /// The JSON value of the Lua value at `index` (raw access only: no metamethods run).
    static func toJSON(
        _ L: OpaquePointer, index: Int32, call: LuaCall, argument: Int32 = 1, depth: Int, visiting: inout Set<UnsafeRawPointer>
    ) throws(LuaUsageError) -> JSONValue {
        let stack = LuaStack(L)
        let index = lua_absindex(L, index)
        switch stack.type(at: index) {
        case .nil, .none:
            return .null
        case .boolean:
            return .bool(lua_toboolean(L, index) != 0)
        case .number:
            if stack.isInteger(at: index) { return .integer(Int64(lua_tointegerx(L, index, nil))) }
            let number = lua_tonumberx(L, index, nil)
            guard number.isFinite else { throw call.argumentError(argument, "cannot encode \(number) as JSON") }
            return .double(number)
        case .string:
            guard let bytes = stack.bytes(at: index), let text = String(validating: bytes, as: UTF8.self) else {
                throw call.argumentError(argument, "cannot encode a string that is not valid UTF-8")
            }
            return .string(text)
        case .table:
            if isNull(L, index) { return .null }
            guard depth < maxDepth else { throw call.argumentError(argument, "table nested too deeply to encode") }
            guard let pointer = lua_topointer(L, index) else { return .null }
            guard visiting.insert(pointer).inserted else {
                throw call.argumentError(argument, "cannot encode a table that contains itself")
            }
            defer { visiting.remove(pointer) }
            guard stack.ensure(8) else { throw call.argumentError(argument, "table nested too deeply to encode") }
            return try tableToJSON(L, index: index, call: call, argument: argument, depth: depth, visiting: &visiting)
        default:
            throw call.argumentError(argument, "cannot encode a \(call.typeName(at: index)) as JSON")
        }
    }

    private static func tableToJSON(
        _ L: OpaquePointer, index: Int32, call: LuaCall, argument: Int32, depth: Int, visiting: inout Set<UnsafeRawPointer>
    ) throws(LuaUsageError) -> JSONValue {
        let stack = LuaStack(L)
        // Count keys and see whether they are exactly 1..n.
        var count = 0
        var isSequence = true
        lua_pushnil(L)
        while lua_next(L, index) != 0 {
            count += 1
            if isSequence {
                if stack.type(at: -2) == .number, stack.isInteger(at: -2) {
                    let key = lua_tointegerx(L, -2, nil)
                    if key < 1 || key > lua_Integer(Int32.max) { isSequence = false }
                } else {
                    isSequence = false
                }
            }
            kvm_lua_pop(L, 1)
        }
        if isSequence, count > 0, Int(lua_rawlen(L, index)) == count || hasArrayMark(L, index) {
            var items: [JSONValue] = []
            items.reserveCapacity(count)
            for i in 1...count {
                lua_rawgeti(L, index, lua_Integer(i))
                defer { kvm_lua_pop(L, 1) }
                items.append(try toJSON(L, index: -1, call: call, argument: argument, depth: depth + 1, visiting: &visiting))
            }
            return .array(items)
        }
        if count == 0 { return hasArrayMark(L, index) ? .array([]) : .object([]) }
        var members: [(key: String, value: JSONValue)] = []
        lua_pushnil(L)
        while lua_next(L, index) != 0 {
            let key: String
            switch stack.type(at: -2) {
            case .string:
                guard let bytes = stack.bytes(at: -2), let text = String(validating: bytes, as: UTF8.self) else {
                    kvm_lua_pop(L, 2)
                    throw call.argumentError(argument, "cannot encode a key that is not valid UTF-8")
                }
                key = text
            case .number where stack.isInteger(at: -2):
                key = String(lua_tointegerx(L, -2, nil))
            default:
                let typeName = call.typeName(at: -2)
                kvm_lua_pop(L, 2)
                throw call.argumentError(argument, "cannot encode a table with a \(typeName) key as JSON")
            }
            do {
                members.append((key: key, value: try toJSON(L, index: -1, call: call, argument: argument, depth: depth + 1, visiting: &visiting)))
            } catch {
                kvm_lua_pop(L, 2)
                throw error
            }
            kvm_lua_pop(L, 1)
        }
        members.sort { $0.key < $1.key }
        return .object(members)
    }

    /// Pushes the Lua value of `value`; false when the Lua stack cannot grow.
    static func push(_ value: JSONValue, on L: OpaquePointer) -> Bool {
        let stack = LuaStack(L)
        guard stack.ensure(4) else { return false }
        switch value {
        case .null: lua_getfield(L, kvm_lua_registryindex(), nullRegistryKey)
        case let .bool(b): lua_pushboolean(L, b ? 1 : 0)
        case let .integer(i): lua_pushinteger(L, lua_Integer(i))
        case let .double(d): lua_pushnumber(L, d)
        case let .string(s): stack.push(string: s)
        case let .array(items):
            lua_createtable(L, Int32(clamping: items.count), 0)
            for (n, item) in items.enumerated() {
                guard push(item, on: L) else { return false }
                lua_rawseti(L, -2, lua_Integer(n + 1))
            }
            kvm_luaL_getmetatable(L, arrayMetatable)
            lua_setmetatable(L, -2)
        case let .object(members):
            lua_createtable(L, 0, Int32(clamping: members.count))
            for member in members {
                stack.push(string: member.key)
                guard push(member.value, on: L) else { return false }
                lua_rawset(L, -3)
            }
        }
        return true
    }
}
