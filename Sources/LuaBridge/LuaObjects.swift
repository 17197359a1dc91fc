import CLua

/// A Swift object that async operations may return to Lua (it crosses threads).
public protocol LuaSendableObject: AnyObject, Sendable {}

/// Read access to a property of a userdata object: pushes exactly one value.
public typealias LuaPropertyGetter<T> = (T, LuaStack) -> Void

/// Write access to a property (`obj.name = value`): the call's arguments are the object, the
/// name and the value (index 3); throwing raises the error in Lua.
public typealias LuaPropertySetter<T> = (T, LuaCall) throws -> Void

extension LuaRuntime {
    /// Marker field in every metatable the bridge creates, so that a foreign userdata (an
    /// `io` file, a C module's object) is never mistaken for a boxed Swift object.
    static let swiftMarker = "__swift_object"

    /// Defers `registrar` (which calls `registerType` for `types` and may add to their
    /// metatables) until an object of one of `types` is first pushed, or until the function
    /// specs are read (`help`, completion of docs, the generated reference). Building every
    /// metatable at start-up costs about a millisecond of generic-metadata instantiation and
    /// help texts that `kvmlua -e ...` scripts which never touch these types should not pay.
    public func deferRegistration(of types: [(type: AnyObject.Type, name: String)], _ registrar: @escaping () -> Void) {
        for entry in types {
            typeNames[ObjectIdentifier(entry.type)] = entry.name
            pendingTypes.insert(ObjectIdentifier(entry.type))
        }
        pendingRegistrars.append(registrar)
    }

    /// Runs every deferred registration now, in the order they were deferred.
    public func registerPendingTypes() {
        // After close() there is no state to build metatables in (and nothing can use them).
        guard !pendingRegistrars.isEmpty, !isClosed else { return }
        let registrars = pendingRegistrars
        // Cleared first: a registrar that pushes an object of its own type must not recurse.
        pendingRegistrars.removeAll()
        pendingTypes.removeAll()
        let top = lua_gettop(L)
        for registrar in registrars { registrar() }
        lua_settop(L, top)
    }

    /// Registers a userdata type: one metatable named `name` (also its `__name`), with
    /// `methods` reachable through `__index`, read-only `properties` (writable where `setters`
    /// has them: any other assignment raises an error), and `__tostring`.
    public func registerType<T: AnyObject>(
        _ type: T.Type, name: String, methods: [LuaFunctionSpec],
        properties: [String: LuaPropertyGetter<T>] = [:],
        setters: [String: LuaPropertySetter<T>] = [:],
        tostring: ((T) -> String)? = nil,
        length: ((T) -> Int)? = nil
    ) {
        typeNames[ObjectIdentifier(type)] = name
        let stack = LuaStack(L)
        _ = luaL_newmetatable(L, name)
        let metatable = lua_gettop(L)
        lua_pushboolean(L, 1)
        stack.setRawField(metatable, Self.swiftMarker)
        lua_pushcclosure(L, releaseBoxedObjectFunction, 0)
        stack.setRawField(metatable, "__gc")

        kvm_lua_newtable(L)
        register(methods, inTableAt: -1)
        // For completion and help: the methods and property names, whatever __index is.
        lua_pushvalue(L, -1)
        stack.setRawField(metatable, "__methods")
        lua_createtable(L, Int32(properties.count), 0)
        for (n, name) in properties.keys.sorted().enumerated() {
            stack.push(string: name)
            lua_rawseti(L, -2, lua_Integer(n + 1))
        }
        stack.setRawField(metatable, "__properties")
        if properties.isEmpty {
            stack.setRawField(metatable, "__index")
        } else {
            let methodsTable = LuaRef(popping: L)
            let indexSpec = LuaFunctionSpec("\(name).__index", "", body: { call in
                methodsTable.push(on: call.L)
                lua_pushvalue(call.L, 2)
                if lua_rawget(call.L, -2) != LUA_TNIL { return .values(1) }
                call.stack.pop(2)
                if let key = call.stack.string(at: 2), let getter = properties[key],
                    let object = call.runtime.object(at: 1, on: call.L, as: T.self)
                {
                    getter(object, call.stack)
                    return .values(1)
                }
                lua_pushnil(call.L)
                return .values(1)
            })
            push(function: indexSpec, documented: false)
            stack.setRawField(metatable, "__index")
        }
        if !setters.isEmpty {
            let newindexSpec = LuaFunctionSpec("\(name).__newindex", "", body: { call in
                guard let key = call.stack.string(at: 2), let setter = setters[key],
                    let object = call.runtime.object(at: 1, on: call.L, as: T.self)
                else {
                    let key = call.stack.string(at: 2) ?? "?"
                    throw call.argumentError(2, "cannot set field '\(key)' of \(name) (settable: \(setters.keys.sorted().joined(separator: ", ")))")
                }
                try setter(object, call)
                return .values(0)
            })
            push(function: newindexSpec, documented: false)
            stack.setRawField(metatable, "__newindex")
        }
        if let tostring {
            let tostringSpec = LuaFunctionSpec("\(name).__tostring", "", body: { call in
                guard let object = call.runtime.object(at: 1, on: call.L, as: T.self) else {
                    return call.returning(.string(name))
                }
                return call.returning(.string(tostring(object)))
            })
            push(function: tostringSpec, documented: false)
            stack.setRawField(metatable, "__tostring")
        }
        if let length {
            let lengthSpec = LuaFunctionSpec("\(name).__len", "", body: { call in
                guard let object = call.runtime.object(at: 1, on: call.L, as: T.self) else { return call.returning(.int(0)) }
                return call.returning(.int(length(object)))
            })
            push(function: lengthSpec, documented: false)
            stack.setRawField(metatable, "__len")
        }
        kvm_lua_pop(L, 1)
    }

    /// Pushes `object` as a userdata of its registered type (nil if the type is unknown).
    public func push(object: AnyObject, on L: OpaquePointer) {
        let id = ObjectIdentifier(Swift.type(of: object))
        if pendingTypes.contains(id) { registerPendingTypes() }
        guard let name = typeNames[id] else {
            lua_pushnil(L)
            return
        }
        pushBoxed(object, metatable: name, on: L)
    }

    /// The Swift object of the userdata at `index` when it is one of ours and a `T`.
    public func object<T: AnyObject>(at index: Int32, on L: OpaquePointer, as type: T.Type) -> T? {
        guard lua_type(L, index) == LUA_TUSERDATA, lua_getmetatable(L, index) != 0 else { return nil }
        let isOurs = LuaStack(L).rawField(-1, Self.swiftMarker) == .boolean
        kvm_lua_pop(L, 2)
        guard isOurs, let raw = lua_touserdata(L, index),
            let pointer = raw.assumingMemoryBound(to: UnsafeRawPointer?.self).pointee
        else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(pointer).takeUnretainedValue() as? T
    }
}
