import Foundation
import CLua
import LuaBridge

/// Runs `body` on a dedicated thread, as the Lua thread of a real program would be, and
/// waits without blocking Swift's cooperative pool (the scheduler's loop blocks in poll).
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

/// A runtime with the standard libraries, and a way to run a chunk and get its results as text.
final class TestLua {
    let runtime: LuaRuntime
    var L: OpaquePointer { runtime.L }

    init() throws {
        runtime = try LuaRuntime()
        runtime.openStandardLibraries()
    }

    deinit { runtime.close() }

    /// Runs `code`; returns its results converted with tostring and joined by tabs, or throws
    /// the error message (with traceback from debug.traceback).
    func run(_ code: String) throws -> String {
        let wrapper = """
            local chunk = assert(load(...))
            local results = table.pack(xpcall(chunk, debug.traceback))
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
