import CLua
import CLuaRuntime

/// What a Swift function gives back to Lua.
public enum LuaReturn {
    /// That many values were pushed on the stack (the last ones are the results).
    case values(Int32)
    /// Wait for an operation: inside a task the coroutine yields to the scheduler, elsewhere
    /// the scheduler loop runs until the operation completes. Its results are returned.
    case await(LuaAwaitable)

    public static var none: LuaReturn { .values(0) }
}

public typealias LuaFunctionBody = (LuaCall) throws -> LuaReturn

/// A Swift function made visible to Lua, with the documentation `help()` prints and the
/// reference docs are generated from.
public struct LuaFunctionSpec {
    /// Full name as Lua users write it: `kvm.sleep`, `dev:info`, `task:wait`.
    public let name: String
    /// Call shape, e.g. `kvm.sleep(s)` or `dev:click([button [, x, y]])`.
    public let signature: String
    /// What it returns, e.g. `Device`; empty when nothing.
    public let returns: String
    /// One or more paragraphs.
    public let documentation: String
    /// The keys its options table accepts (`call.options(i)` raises `usage` for any other);
    /// `help()` and docs/lua-api.md list them from here, so the check and the documentation
    /// cannot disagree.
    public let options: [String]
    /// Called with `:`: argument 1 is `self` and error messages count from the next one.
    public let isMethod: Bool
    public let body: LuaFunctionBody?

    public init(
        _ name: String, signature: String? = nil, returns: String = "", options: [String] = [], _ documentation: String,
        body: LuaFunctionBody?
    ) {
        self.name = name
        self.signature = signature ?? "\(name)()"
        self.returns = returns
        self.options = options
        self.documentation = documentation
        self.isMethod = name.contains(":")
        self.body = body
    }

    /// The short name Lua error messages use ("sleep" for "kvm.sleep").
    public var shortName: String {
        if let separator = name.lastIndex(where: { $0 == "." || $0 == ":" }) {
            return String(name[name.index(after: separator)...])
        }
        return name
    }

    /// What `help(f)` prints.
    public var helpText: String {
        var text = signature
        if !returns.isEmpty { text += " -> \(returns)" }
        text += "\n\n" + documentation
        if let optionsLine { text += "\n\n" + optionsLine }
        return text
    }

    /// "Options: `a`, `b`." (nil when the function takes none), for help and the reference.
    public var optionsLine: String? {
        options.isEmpty ? nil : "Options: " + options.sorted().map { "`\($0)`" }.joined(separator: ", ") + "."
    }
}

/// The Swift object in upvalue 1 of every Swift-backed Lua function.
final class LuaFunctionBox {
    let spec: LuaFunctionSpec
    let body: LuaFunctionBody
    init(spec: LuaFunctionSpec, body: @escaping LuaFunctionBody) {
        self.spec = spec
        self.body = body
    }
}

/// The arguments of one call from Lua, and helpers to check them and push results.
/// Valid only during the call.
public struct LuaCall {
    public let L: OpaquePointer
    public let runtime: LuaRuntime
    public let spec: LuaFunctionSpec
    /// Number of arguments (including `self` for methods).
    public let count: Int32

    public var stack: LuaStack { LuaStack(L) }

    /// The argument number Lua users see (methods do not count `self`).
    func shownIndex(_ index: Int32) -> Int32 { spec.isMethod ? index - 1 : index }

    /// "bad argument #n to 'name' (detail)" as a usage error.
    public func argumentError(_ index: Int32, _ detail: String) -> LuaUsageError {
        let shown = shownIndex(index)
        if shown == 0 {
            return LuaUsageError("calling '\(spec.shortName)' on bad self (\(detail))")
        }
        return LuaUsageError("bad argument #\(shown) to '\(spec.name)' (\(detail))")
    }

    public func typeError(_ index: Int32, expected: String) -> LuaUsageError {
        argumentError(index, "\(expected) expected, got \(typeName(at: index))")
    }

    /// The type name luaL_typename would give, with `__name` for userdata.
    public func typeName(at index: Int32) -> String {
        let type = stack.type(at: index)
        if type == .none { return "no value" }
        if type == .userdata || type == .table, lua_getmetatable(L, index) != 0 {
            let hasName = stack.rawField(-1, "__name") == .string
            let name = stack.string(at: -1)
            stack.pop(2)
            if hasName, let name { return name }
        }
        return type.name
    }

    public func type(_ index: Int32) -> LuaType { stack.type(at: index) }
    public func isNoneOrNil(_ index: Int32) -> Bool { kvm_lua_isnoneornil(L, index) != 0 }

    // MARK: Arguments

    public func number(_ index: Int32) throws(LuaUsageError) -> Double {
        var ok: Int32 = 0
        let value = lua_tonumberx(L, index, &ok)
        guard ok != 0, type(index) == .number || type(index) == .string else { throw typeError(index, expected: "number") }
        return value
    }

    public func optionalNumber(_ index: Int32) throws(LuaUsageError) -> Double? {
        isNoneOrNil(index) ? nil : try number(index)
    }

    /// An integer; a float with an exact integer value is accepted (like luaL_checkinteger).
    public func integer(_ index: Int32) throws(LuaUsageError) -> Int64 {
        var ok: Int32 = 0
        let value = lua_tointegerx(L, index, &ok)
        if ok != 0, type(index) == .number || type(index) == .string { return Int64(value) }
        if type(index) == .number { throw argumentError(index, "number has no integer representation") }
        throw typeError(index, expected: "number")
    }

    public func optionalInteger(_ index: Int32) throws(LuaUsageError) -> Int64? {
        isNoneOrNil(index) ? nil : try integer(index)
    }

    /// A string argument as bytes; numbers are accepted and converted (like luaL_checklstring).
    public func bytes(_ index: Int32) throws(LuaUsageError) -> [UInt8] {
        let kind = type(index)
        guard kind == .string || kind == .number else { throw typeError(index, expected: "string") }
        var length = 0
        guard let pointer = lua_tolstring(L, index, &length) else { throw typeError(index, expected: "string") }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    public func string(_ index: Int32) throws(LuaUsageError) -> String {
        String(decoding: try bytes(index), as: UTF8.self)
    }

    public func optionalString(_ index: Int32) throws(LuaUsageError) -> String? {
        isNoneOrNil(index) ? nil : try string(index)
    }

    /// A boolean argument; only `true`/`false` (and nil when optional) are accepted.
    public func boolean(_ index: Int32) throws(LuaUsageError) -> Bool {
        guard type(index) == .boolean else { throw typeError(index, expected: "boolean") }
        return lua_toboolean(L, index) != 0
    }

    public func optionalBoolean(_ index: Int32) throws(LuaUsageError) -> Bool? {
        isNoneOrNil(index) ? nil : try boolean(index)
    }

    public func requireFunction(_ index: Int32) throws(LuaUsageError) {
        guard type(index) == .function else { throw typeError(index, expected: "function") }
    }

    public func requireTable(_ index: Int32) throws(LuaUsageError) -> LuaTableArgument {
        guard type(index) == .table else { throw typeError(index, expected: "table") }
        return LuaTableArgument(call: self, index: lua_absindex(L, index))
    }

    public func optionalTable(_ index: Int32) throws(LuaUsageError) -> LuaTableArgument? {
        isNoneOrNil(index) ? nil : try requireTable(index)
    }

    /// The options table at `index` (nil when absent). A key that is not one of `known`
    /// (default: the spec's `options`) raises `usage` naming it and the closest known key:
    /// a misspelt option must never be ignored silently.
    public func options(_ index: Int32, known: [String]? = nil) throws(LuaUsageError) -> LuaTableArgument? {
        guard let table = try optionalTable(index) else { return nil }
        try checkOptionKeys(table, known: known ?? spec.options)
        return table
    }

    /// Like `options(_:)` for a table that must be given.
    public func requireOptions(_ index: Int32, known: [String]? = nil) throws(LuaUsageError) -> LuaTableArgument {
        let table = try requireTable(index)
        try checkOptionKeys(table, known: known ?? spec.options)
        return table
    }

    /// A non-string key as Lua source would show it (`1`, `2.5`, `true`), else its type name.
    private func keyDescription(at index: Int32) -> String {
        switch type(index) {
        case .number:
            var isInteger: Int32 = 0
            let integer = lua_tointegerx(L, index, &isInteger)
            return isInteger != 0 ? String(integer) : String(lua_tonumberx(L, index, nil))
        case .boolean: return lua_toboolean(L, index) != 0 ? "true" : "false"
        default: return typeName(at: index)
        }
    }

    private func checkOptionKeys(_ table: LuaTableArgument, known: [String]) throws(LuaUsageError) {
        if let problem = unknownOption(in: table, known: known) { throw argumentError(table.index, problem) }
    }

    /// "unknown option 'x' (did you mean 'y'?)" for the first key of `table` not in `known`, or nil.
    public func unknownOption(in table: LuaTableArgument, known: [String]) -> String? {
        var unknown: String?
        lua_pushnil(L)
        while lua_next(L, table.index) != 0 {
            // Only string keys are read as text: lua_tolstring on a number key would change the
            // key in place and break lua_next.
            if lua_type(L, -2) == LUA_TSTRING {
                let key = stack.string(at: -2) ?? ""
                if !known.contains(key) { unknown = "'\(key)'" }
            } else {
                unknown = "[\(keyDescription(at: -2))]"
            }
            stack.pop()
            if unknown != nil {
                stack.pop()  // the key
                break
            }
        }
        return unknown.map { OptionNames.unknownMessage($0, known: known) }
    }

    /// The Swift object in a userdata argument of type `T`.
    public func object<T: AnyObject>(_ index: Int32, as type: T.Type, typeName: String) throws(LuaUsageError) -> T {
        guard let object = runtime.object(at: index, on: L, as: T.self) else {
            throw typeError(index, expected: typeName)
        }
        return object
    }

    /// Keeps the argument alive beyond the call.
    public func reference(_ index: Int32) -> LuaRef { LuaRef(at: index, on: L) }

    // MARK: Results

    /// Pushes the values and returns `.values(n)`.
    public func returning(_ values: LuaData...) -> LuaReturn {
        _ = stack.ensure(Int32(values.count) + 2)
        for value in values { stack.push(value) }
        return .values(Int32(values.count))
    }

    public func returning(_ values: [LuaData]) -> LuaReturn {
        _ = stack.ensure(Int32(clamping: values.count) + 2)
        for value in values { stack.push(value) }
        return .values(Int32(clamping: values.count))
    }

    /// Pushes a userdata for `object` and returns it as the one result.
    public func returning(object: AnyObject) -> LuaReturn {
        runtime.push(object: object, on: L)
        return .values(1)
    }
}

/// An option table argument, read with raw access (metamethods are not run).
public struct LuaTableArgument {
    public let call: LuaCall
    /// Absolute stack index of the table.
    public let index: Int32

    public init(call: LuaCall, index: Int32) {
        self.call = call
        self.index = lua_absindex(call.L, index)
    }

    var L: OpaquePointer { call.L }

    func fieldError(_ name: String, _ expected: String) -> LuaUsageError {
        call.argumentError(index, "field '\(name)' must be \(expected), got \(call.typeName(at: -1))")
    }

    /// Runs `read` with the field pushed, pops it afterwards.
    func withField<T>(_ name: String, _ read: () throws(LuaUsageError) -> T) throws(LuaUsageError) -> T {
        call.stack.rawField(index, name)
        defer { call.stack.pop() }
        return try read()
    }

    public func has(_ name: String) -> Bool {
        let present = call.stack.rawField(index, name) != .nil
        call.stack.pop()
        return present
    }

    public func number(_ name: String) throws(LuaUsageError) -> Double? {
        try withField(name) { () throws(LuaUsageError) -> Double? in
            switch call.type(-1) {
            case .nil: return nil
            case .number: return lua_tonumberx(L, -1, nil)
            default: throw fieldError(name, "a number")
            }
        }
    }

    public func integer(_ name: String) throws(LuaUsageError) -> Int64? {
        try withField(name) { () throws(LuaUsageError) -> Int64? in
            switch call.type(-1) {
            case .nil: return nil
            case .number:
                var ok: Int32 = 0
                let value = lua_tointegerx(L, -1, &ok)
                guard ok != 0 else { throw fieldError(name, "an integer") }
                return Int64(value)
            default: throw fieldError(name, "an integer")
            }
        }
    }

    public func string(_ name: String) throws(LuaUsageError) -> String? {
        try withField(name) { () throws(LuaUsageError) -> String? in
            switch call.type(-1) {
            case .nil: return nil
            case .string: return call.stack.string(at: -1)
            default: throw fieldError(name, "a string")
            }
        }
    }

    public func boolean(_ name: String) throws(LuaUsageError) -> Bool? {
        try withField(name) { () throws(LuaUsageError) -> Bool? in
            switch call.type(-1) {
            case .nil: return nil
            case .boolean: return lua_toboolean(L, -1) != 0
            default: throw fieldError(name, "a boolean")
            }
        }
    }

    /// The length of the sequence part (raw).
    public var length: Int { Int(lua_rawlen(L, index)) }

    /// Pushes `t[i]` (raw).
    @discardableResult
    public func pushElement(_ i: Int) -> LuaType {
        LuaType(rawValue: lua_rawgeti(L, index, lua_Integer(i))) ?? .none
    }
}

// MARK: Making functions

extension LuaRuntime {
    /// Pushes a Lua function that runs `spec.body`. `documented: false` keeps internal
    /// functions (metamethods) out of `functionSpecs` and `help`.
    public func push(function spec: LuaFunctionSpec, on L: OpaquePointer? = nil, documented: Bool = true) {
        let target = L ?? self.L
        let body = spec.body ?? { _ in .none }
        let box = LuaFunctionBox(spec: spec, body: body)
        pushBoxed(box, metatable: Self.functionBoxMetatable, on: target)
        kvm_push_swift_closure(target, 1)
        if !documented { return }
        if target == self.L { recordDocumentation(for: spec) } else {
            lua_xmove(target, self.L, 1)
            recordDocumentation(for: spec)
            lua_xmove(self.L, target, 1)
        }
    }

    /// Sets `table[name] = function` for each spec, on the table at `tableIndex` of the main thread.
    /// The field name is the part after the last `.` or `:` of the spec's name.
    public func register(_ specs: [LuaFunctionSpec], inTableAt tableIndex: Int32) {
        let table = lua_absindex(L, tableIndex)
        for spec in specs {
            push(function: spec)
            LuaStack(L).setRawField(table, spec.shortName)
        }
    }

    /// Pushes a full userdata holding a retained Swift object, with the named metatable.
    func pushBoxed(_ object: AnyObject, metatable: String, on L: OpaquePointer) {
        guard let raw = lua_newuserdatauv(L, MemoryLayout<UnsafeRawPointer?>.size, 0) else { return }
        raw.assumingMemoryBound(to: UnsafeRawPointer?.self).pointee = UnsafeRawPointer(Unmanaged.passRetained(object).toOpaque())
        kvm_luaL_getmetatable(L, metatable)
        lua_setmetatable(L, -2)
    }
}

/// The one dispatcher behind kvm_trampoline: runs the boxed Swift closure and tells the
/// trampoline whether to return, raise, or yield. Nothing below may raise a Lua error.
func luaBridgeDispatch(_ state: OpaquePointer?) -> Int32 {
    guard let L = state, let runtime = LuaRuntime.owning(L) else { return 0 }
    guard let raw = lua_touserdata(L, kvm_lua_upvalueindex(1)),
        let boxPointer = raw.assumingMemoryBound(to: UnsafeRawPointer?.self).pointee
    else {
        lua_pushstring(L, "Swift function called after its state was closed")
        return KVM_CALL_ERROR
    }
    let box = Unmanaged<AnyObject>.fromOpaque(boxPointer).takeUnretainedValue()
    guard let function = box as? LuaFunctionBox else {
        lua_pushstring(L, "corrupt Swift function")
        return KVM_CALL_ERROR
    }
    let call = LuaCall(L: L, runtime: runtime, spec: function.spec, count: lua_gettop(L))
    guard lua_checkstack(L, 20) != 0 else {
        lua_pushstring(L, "stack overflow")
        return KVM_CALL_ERROR
    }
    do {
        switch try function.body(call) {
        case let .values(n):
            return n
        case let .await(awaitable):
            return try runtime.scheduler.await(awaitable, on: L, call: call)
        }
    } catch {
        runtime.pushError(error, on: L)
        return KVM_CALL_ERROR
    }
}

/// Messages for option tables.
public enum OptionNames {
    /// `unknown option 'dealy' (did you mean 'delay'?)`, or the known names when none is close.
    public static func unknownMessage(_ quotedKey: String, known: [String]) -> String {
        let key = quotedKey.hasPrefix("'") ? String(quotedKey.dropFirst().dropLast()) : quotedKey
        if known.isEmpty { return "unknown option \(quotedKey) (this function takes no options)" }
        if let closest = closest(to: key, in: known) { return "unknown option \(quotedKey) (did you mean '\(closest)'?)" }
        return "unknown option \(quotedKey) (options: \(known.sorted().joined(separator: ", ")))"
    }

    /// The known name nearest to `key` by edit distance (adjacent swaps count as one), if it is
    /// close enough to be a typo: at most 1 edit for short names, 2 from 5 letters, 3 from 9.
    public static func closest(to key: String, in known: [String]) -> String? {
        let lowered = key.lowercased()
        let limit = lowered.count >= 9 ? 3 : lowered.count >= 5 ? 2 : 1
        var best: (name: String, distance: Int)?
        for name in known {
            let distance = editDistance(Array(lowered), Array(name.lowercased()))
            if distance <= limit, distance < (best?.distance ?? Int.max) { best = (name, distance) }
        }
        return best?.name
    }

    /// Optimal string alignment distance (Damerau–Levenshtein without repeated edits of a substring).
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}
