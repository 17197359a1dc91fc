/// Errors the bridge itself raises. The `kvm` module turns them into `kvm.Error` tables
/// with the matching kind; without it they reach Lua as strings.
public protocol LuaBridgeErrorDescribing: Error {
    /// The message as Lua should show it.
    var luaMessage: String { get }
    /// The `kvm.Error` kind this error maps to.
    var luaKind: String { get }
}

/// Bad arguments from a script (wrong type, value out of range).
public struct LuaUsageError: LuaBridgeErrorDescribing, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var luaMessage: String { message }
    public var luaKind: String { "usage" }
    public var description: String { message }
}

/// An operation cancelled by Ctrl-C, `task:cancel()` or `kvm.timeout`.
public struct LuaCancelledError: LuaBridgeErrorDescribing, CustomStringConvertible {
    public let message: String
    public init(_ message: String = "cancelled") { self.message = message }
    public var luaMessage: String { message }
    public var luaKind: String { "cancelled" }
    public var description: String { message }
}

/// A wait that took too long.
public struct LuaTimeoutError: LuaBridgeErrorDescribing, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var luaMessage: String { message }
    public var luaKind: String { "timeout" }
    public var description: String { message }
}

/// Anything else the bridge cannot do (out of stack, internal inconsistency).
public struct LuaRuntimeError: LuaBridgeErrorDescribing, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var luaMessage: String { message }
    public var luaKind: String { "runtime" }
    public var description: String { message }
}

/// A Lua error value (whatever `error()` was called with) travelling through Swift, to be
/// raised again unchanged.
public struct LuaRaisedValue: Error, @unchecked Sendable {
    // @unchecked: created and consumed on the Lua thread only; it never crosses threads.
    public let ref: LuaRef
    /// The traceback ("stack traceback:\n\t...") captured where the value was raised, when known.
    public let traceback: String?

    public init(ref: LuaRef, traceback: String? = nil) {
        self.ref = ref
        self.traceback = traceback
    }
}
