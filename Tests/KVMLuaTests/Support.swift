import CLua
import Foundation
import KVMLua
import LuaBridge

/// Runs `body` on a dedicated thread, as the Lua thread of the real program is.
func onLuaThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

struct LuaFailure: Error, CustomStringConvertible {
    let description: String
}

/// A state with the standard libraries, `kvm` and `help`, as kvmlua sets it up.
final class KVMState {
    let runtime: LuaRuntime
    var L: OpaquePointer { runtime.L }

    init() throws {
        runtime = try LuaRuntime()
        runtime.openStandardLibraries()
        try KVMModule.install(in: runtime)
        try HelpBindings.install(in: runtime)
    }

    deinit { runtime.close() }

    /// Runs `code` and returns its results through tostring, joined by tabs; a Lua error
    /// is thrown as its message (with a traceback).
    func run(_ code: String) throws -> String {
        let wrapper = """
            local chunk = assert(load(...))
            local results = table.pack(xpcall(chunk, function(e) return debug.traceback(tostring(e)) end))
            if not results[1] then error(results[2], 0) end
            local out = {}
            for i = 2, results.n do out[#out + 1] = tostring(results[i]) end
            return table.concat(out, "\\t")
            """
        guard runtime.load(wrapper, chunkName: "=test") == 0 else { throw LuaFailure(description: runtime.string(at: -1) ?? "?") }
        LuaStack(L).push(string: code)
        let status = kvm_lua_pcall(L, 1, 1, 0)
        let text = runtime.string(at: -1) ?? ""
        LuaStack(L).pop()
        if status != 0 { throw LuaFailure(description: text) }
        return text
    }
}
