import CLua
import Foundation
import LuaBridge
import Testing

/// A Swift object exposed to Lua, counting how many are alive (to see `__gc` release them).
final class Counter {
    nonisolated(unsafe) static var alive = 0
    var value: Int
    init(_ value: Int) {
        self.value = value
        Counter.alive += 1
    }
    deinit { Counter.alive -= 1 }
}

struct SwiftFailure: Error, CustomStringConvertible {
    var description: String { "the Swift side failed" }
}

/// Registers test functions in a global table `t`.
func installTestFunctions(_ lua: TestLua) {
    let runtime = lua.runtime
    runtime.registerType(
        Counter.self, name: "test.Counter",
        methods: [
            LuaFunctionSpec("counter:add", "Adds.", body: { call in
                let counter = try call.object(1, as: Counter.self, typeName: "test.Counter")
                counter.value += Int(try call.integer(2))
                return call.returning(.int(counter.value))
            })
        ],
        properties: ["value": { counter, stack in stack.push(.int(counter.value)) }],
        tostring: { "Counter(\($0.value))" })
    lua_createtable(lua.L, 0, 8)
    runtime.register(
        [
            LuaFunctionSpec("t.echo", "Returns its arguments.", body: { call in
                lua_settop(call.L, call.count)
                return .values(call.count)
            }),
            LuaFunctionSpec("t.add", "Adds two integers.", body: { call in
                call.returning(.integer(try call.integer(1) &+ call.integer(2)))
            }),
            LuaFunctionSpec("t.bytes", "Length of a string in bytes, and the string back.", body: { call in
                let bytes = try call.bytes(1)
                return call.returning(.int(bytes.count), .bytes(bytes))
            }),
            LuaFunctionSpec("t.fail", "Throws a Swift error.", body: { _ in throw SwiftFailure() }),
            LuaFunctionSpec("t.call", "Calls a Lua function from Swift and returns its result.", body: { call in
                try call.requireFunction(1)
                lua_pushvalue(call.L, 1)
                if kvm_lua_pcall(call.L, 0, 1, 0) != 0 {
                    // The Lua error value goes back to Lua unchanged.
                    throw LuaRaisedValue(ref: LuaRef(popping: call.L))
                }
                return .values(1)
            }),
            LuaFunctionSpec("t.counter", "A new Counter.", body: { call in
                call.returning(object: Counter(Int(try call.optionalInteger(1) ?? 0)))
            }),
            LuaFunctionSpec("t.data", "A nested table from Swift.", body: { call in
                call.returning(.fields(["n": .int(3), "f": .number(1.5), "list": .array([.string("a"), .bool(true)])]))
            }),
            LuaFunctionSpec("t.sleep", "Waits.", body: { call in .await(.sleep(try call.number(1))) }),
            LuaFunctionSpec("t.async", "Doubles a number on another thread.", body: { call in
                let value = try call.integer(1)
                return .await(.async { () async throws -> [LuaData] in
                    try await Task.sleep(nanoseconds: 20_000_000)
                    if value < 0 { throw SwiftFailure() }
                    return [.integer(value * 2)]
                })
            }),
            LuaFunctionSpec("t.spawn", "Spawns a task, returns its id.", body: { call in
                guard let task = call.runtime.scheduler.spawn(functionAt: 1, argumentCount: call.count - 1, on: call.L)
                else { return .none }
                lua_pushinteger(call.L, lua_Integer(task.id))
                return .values(1)
            }),
            LuaFunctionSpec("t.run", "Runs the scheduler until every task has finished.", body: { call in
                let scheduler = call.runtime.scheduler
                scheduler.run(until: { scheduler.liveTasks.isEmpty })
                return .none
            }),
        ], inTableAt: -1)
    lua_setglobal(lua.L, "t")
}

@Suite(.timeLimit(.minutes(1))) struct BridgeTests {
    @Test func valuesKeepTheirTypes() async throws {
        let text = try await onLuaThread {
            let lua = try TestLua()
            installTestFunctions(lua)
            return try lua.run("""
                local a, b, c, d, e = t.echo(1, 1.0, "x", true, nil)
                return math.type(a), math.type(b), c, d, e, select('#', t.echo(nil, nil))
                """)
        }
        #expect(text == "integer\tfloat\tx\ttrue\tnil\t2")
    }

    @Test func stringsAreBytes() async throws {
        let text = try await onLuaThread {
            let lua = try TestLua()
            installTestFunctions(lua)
            return try lua.run(#"local n, s = t.bytes("a\0b\255\254") return n, s == "a\0b\255\254""#)
        }
        #expect(text == "5\ttrue")
    }

    @Test func tablesFromSwift() async throws {
        let text = try await onLuaThread {
            let lua = try TestLua()
            installTestFunctions(lua)
            return try lua.run("local d = t.data() return d.n, d.f, #d.list, d.list[1], d.list[2]")
        }
        #expect(text == "3\t1.5\t2\ta\ttrue")
    }

    @Test func wrongArgumentTypeIsALuaErrorWithTraceback() async throws {
        let error = try await onLuaThread { () -> String in
            let lua = try TestLua()
            installTestFunctions(lua)
            do {
                _ = try lua.run("local function f() local r = t.add(1, 'x') return r end local r = f() return r")
                return "no error"
            } catch { return "\(error)" }
        }
        #expect(error.contains("bad argument #2 to 't.add' (number expected, got string)"))
        #expect(error.contains("stack traceback:"))
        #expect(error.contains("in local 'f'") || error.contains("in function 'f'") || error.contains("in upvalue 'f'"))
    }

    @Test func swiftErrorBecomesALuaError() async throws {
        let text = try await onLuaThread {
            let lua = try TestLua()
            installTestFunctions(lua)
            return try lua.run("local ok, e = pcall(t.fail) return ok, e")
        }
        #expect(text.hasPrefix("false\t"))
        #expect(text.contains("the Swift side failed"))
    }

    @Test func luaErrorInsideASwiftCallbackPassesThroughUnchanged() async throws {
        let text = try await onLuaThread {
            let lua = try TestLua()
            installTestFunctions(lua)
            return try lua.run("""
                local marker = {}
                local ok, e = pcall(t.call, function() error(marker) end)
                local ok2, e2 = pcall(t.call, function() error("inner", 0) end)
                return ok, e == marker, ok2, e2, t.call(function() return 42 end)
                """)
        }
        #expect(text == "false\ttrue\tfalse\tinner\t42")
    }

    @Test func userdataMethodsPropertiesAndCollection() async throws {
        let (text, alive) = try await onLuaThread { () -> (String, Int) in
            let lua = try TestLua()
            installTestFunctions(lua)
            let before = Counter.alive
            let text = try lua.run("""
                local c = t.counter(5)
                local r = c:add(2)
                local ok, e = pcall(c.add, {}, 1)
                local ok2, e2 = pcall(c.add, c, "x")
                local s = tostring(c)
                c = nil
                collectgarbage() collectgarbage()
                return r, c, s, ok, e:match("bad self") ~= nil, ok2, e2:match("bad argument #1 to 'counter:add'") ~= nil
                """)
            return (text, Counter.alive - before)
        }
        #expect(text == "7\tnil\tCounter(7)\tfalse\ttrue\tfalse\ttrue")
        #expect(alive == 0)
    }

    @Test func propertyAccess() async throws {
        let text = try await onLuaThread {
            let lua = try TestLua()
            installTestFunctions(lua)
            return try lua.run("local c = t.counter(3) c:add(1) return c.value, c.missing")
        }
        #expect(text == "4\tnil")
    }

    @Test func blockingFallbackInTheMainChunk() async throws {
        let text = try await onLuaThread {
            let lua = try TestLua()
            installTestFunctions(lua)
            return try lua.run("""
                local t0 = os.clock()
                local start = t.async(21)
                return start
                """)
        }
        #expect(text == "42")
    }

    @Test func asyncSwiftErrorReachesLua() async throws {
        let text = try await onLuaThread {
            let lua = try TestLua()
            installTestFunctions(lua)
            return try lua.run("local ok, e = pcall(t.async, -1) return ok, tostring(e):match('Swift side failed') ~= nil")
        }
        #expect(text == "false\ttrue")
    }

    @Test func tasksRunConcurrently() async throws {
        let elapsed = try await onLuaThread { () -> Double in
            let lua = try TestLua()
            installTestFunctions(lua)
            let start = monotonicSeconds()
            let text = try lua.run("""
                local order = {}
                for i = 1, 20 do t.spawn(function() t.sleep(0.2) order[#order + 1] = i end) end
                t.run()
                return #order
                """)
            guard text == "20" else { throw LuaFailure(description: text) }
            return monotonicSeconds() - start
        }
        // Twenty 0.2 s sleeps at once take about 0.2 s, not 4 s.
        #expect(elapsed < 1.0)
        #expect(elapsed >= 0.19)
    }

    @Test func yieldsInsideTasksAndPcall() async throws {
        let text = try await onLuaThread {
            let lua = try TestLua()
            installTestFunctions(lua)
            return try lua.run("""
                local log = {}
                t.spawn(function()
                  local ok, e = pcall(function() t.sleep(0.01) log[#log+1] = "a" error("x", 0) end)
                  log[#log+1] = tostring(ok) .. e
                  log[#log+1] = t.async(5)
                end)
                t.run()
                return table.concat(log, ",")
                """)
        }
        #expect(text == "a,falsex,10")
    }

    @Test func deadlockIsReportedNotHung() async throws {
        let text = try await onLuaThread { () -> String in
            let lua = try TestLua()
            installTestFunctions(lua)
            do {
                // A task waiting on an operation that nothing completes: run() must return.
                lua.runtime.push(function: LuaFunctionSpec("t.never", "", body: { _ in .await(LuaAwaitable { _ in }) }))
                lua_setglobal(lua.L, "never")
                return try lua.run("local ok, e = pcall(never) return ok, e")
            } catch { return "\(error)" }
        }
        #expect(text.contains("deadlock"))
    }
}
