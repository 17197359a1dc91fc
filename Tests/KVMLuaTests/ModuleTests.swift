import Foundation
import KVMLua
import LuaBridge
import Testing

@Suite(.timeLimit(.minutes(1))) struct ModuleTests {
    @Test func requireGivesTheGlobal() async throws {
        let text = try await onLuaThread { try KVMState().run("return require('kvm') == kvm, type(kvm.version)") }
        #expect(text == "true\tstring")
    }

    @Test func sleepSuspendsOnlyTheCallingTask() async throws {
        let text = try await onLuaThread {
            try KVMState().run("""
                local t0 = kvm.now()
                local tasks = {}
                for i = 1, 10 do tasks[i] = kvm.spawn(function() kvm.sleep(0.2) return i end) end
                local sum = 0
                for _, t in ipairs(tasks) do sum = sum + t:wait() end
                local elapsed = kvm.now() - t0
                return sum, elapsed > 0.19 and elapsed < 0.8
                """)
        }
        #expect(text == "55\ttrue")
    }

    @Test func waitReraisesAndCancelWorks() async throws {
        let text = try await onLuaThread {
            try KVMState().run("""
                local failing = kvm.spawn(function() error("boom", 0) end)
                local ok, e = pcall(failing.wait, failing)
                local sleeper = kvm.spawn(function() kvm.sleep(30) end)
                kvm.sleep(0.01)
                sleeper:cancel()
                local ok2, e2 = pcall(sleeper.wait, sleeper)
                return ok, e, ok2, e2.kind, sleeper:status(), failing:status()
                """)
        }
        #expect(text == "false\tboom\tfalse\tcancelled\tcancelled\tfailed")
    }

    @Test func cleanupRunsWhenATaskIsCancelled() async throws {
        let text = try await onLuaThread {
            try KVMState().run("""
                local cleaned = false
                local t = kvm.spawn(function()
                  local ok, e = pcall(kvm.sleep, 30)
                  cleaned = true
                  error(e)
                end)
                kvm.sleep(0.01)
                t:cancel()
                pcall(t.wait, t)
                -- a cancelled task that catches the error gets `cancelled` again at its next wait
                local again
                local t2 = kvm.spawn(function()
                  pcall(kvm.sleep, 30)
                  local ok, e = pcall(kvm.sleep, 0)
                  again = e.kind
                end)
                kvm.sleep(0.01)
                t2:cancel()
                pcall(t2.wait, t2)
                return cleaned, again
                """)
        }
        #expect(text == "true\tcancelled")
    }

    @Test func timeoutRaisesAndCancels() async throws {
        let text = try await onLuaThread {
            try KVMState().run("""
                local finished = false
                local t0 = kvm.now()
                local ok, e = pcall(kvm.timeout, 0.1, function() kvm.sleep(5) finished = true end)
                local quick = kvm.timeout(1, function(a) return a * 2 end, 21)
                kvm.sleep(0.05)
                return ok, e.kind, tostring(e), quick, finished, kvm.now() - t0 < 1
                """)
        }
        #expect(text == "false\ttimeout\tkvm: timed out after 0.1 s\t42\tfalse\ttrue")
    }

    @Test func parallelKeepsOrderLimitsAndCollectsErrors() async throws {
        let text = try await onLuaThread {
            try KVMState().run("""
                local running, peak = 0, 0
                local results = kvm.parallel({5, 4, 3, 2, 1}, function(x)
                  running = running + 1
                  peak = math.max(peak, running)
                  kvm.sleep(0.01 * x)
                  running = running - 1
                  return x * 10
                end, { limit = 2 })
                local ok, e = pcall(kvm.parallel, {1, 2, 3}, function(x)
                  if x > 1 then error(kvm.json.decode('{"n":' .. x .. '}')) end
                  return x
                end)
                return table.concat(results, ","), peak, ok, e.n, #e.errors, e.errors[1].n
                """)
        }
        #expect(text == "50,40,30,20,10\t2\tfalse\t2\t1\t3")
    }

    @Test func jsonRoundTrip() async throws {
        let text = try await onLuaThread {
            try KVMState().run(#"""
                local s = kvm.json.encode({ b = { 1, 2.5, "x\"y" }, a = true, c = kvm.json.null, e = kvm.json.array() })
                local v = kvm.json.decode([[{"list":[],"n":-3,"f":1e3,"u":"\u00e9\ud83d\ude00","z":null}]])
                return s, kvm.json.encode(v.list), math.type(v.n), v.f, v.u, v.z == kvm.json.null
                """#)
        }
        #expect(text == #"{"a":true,"b":[1,2.5,"x\"y"],"c":null,"e":[]}"# + "\t[]\tinteger\t1000.0\té😀\ttrue")
    }

    @Test func jsonErrorsAreUsageErrors() async throws {
        let text = try await onLuaThread {
            try KVMState().run("""
                local t = {} t.self = t
                local kinds = {}
                for _, f in ipairs({
                  function() return kvm.json.encode(t) end,
                  function() return kvm.json.encode(print) end,
                  function() return kvm.json.encode(0/0) end,
                  function() return kvm.json.encode("\\255") end,
                  function() return kvm.json.decode("{") end,
                  function() return kvm.json.decode("[1,]") end,
                }) do
                  local ok, e = pcall(f)
                  kinds[#kinds + 1] = ok and "ok" or e.kind
                end
                return table.concat(kinds, ",")
                """)
        }
        #expect(text == "usage,usage,usage,usage,usage,usage")
    }

    @Test func errorsAreKVMErrorTablesWithPosition() async throws {
        let text = try await onLuaThread {
            try KVMState().run("""
                local ok, e = pcall(kvm.sleep, -1)
                return getmetatable(e) == kvm.Error, e.kind, e.msg, e.where, tostring(e)
                """)
        }
        #expect(
            text
                == "true\tusage\tbad argument #1 to 'kvm.sleep' (seconds must be a finite number >= 0)\t\tkvm: bad argument #1 to 'kvm.sleep' (seconds must be a finite number >= 0)"
        )
    }

    /// Object metatables are built on first use (a start-up saving); the first use may be in a
    /// task (a coroutine), and help/the reference see the deferred types' methods before any use.
    @Test func objectTypesAreBuiltOnFirstUseAlsoInsideATask() async throws {
        let (text, specs) = try await onLuaThread { () -> (String, [String]) in
            let state = try KVMState()
            let text = try state.run("""
                local before = debug.getregistry()["kvm.Macro"]
                local task = kvm.spawn(function()
                  kvm.sleep(0.001)
                  local m = kvm.macro.parse("0 key a\\n0.5 key b")
                  return #m, tostring(m), type(m.save)
                end)
                local n, text, save = task:wait()
                return before == nil, n, text, save, type(debug.getregistry()["kvm.Macro"]), tostring(task):match("^kvm.Task")
                """)
            return (text, state.runtime.functionSpecs.map(\.name))
        }
        #expect(text == "true\t2\tkvm.Macro (2 steps, 0.5 s)\tfunction\ttable\tkvm.Task")
        for name in ["dev:hold", "dev.hid:reset", "f:save", "macro:play", "rec:stop", "task:wait"] {
            #expect(specs.contains(name), "\(name) is missing from the specs")
        }
    }

    @Test func helpComesFromTheSameSpecs() async throws {
        let (text, specs) = try await onLuaThread { () -> (String, [String]) in
            let state = try KVMState()
            let text = try state.run("""
                local out = {}
                local write = io.write
                return type(help)
                """)
            return (text, KVMModule.documentedFunctions(in: state.runtime).map(\.name))
        }
        #expect(text == "function")
        for name in ["kvm.sleep", "kvm.now", "kvm.spawn", "kvm.timeout", "kvm.parallel", "kvm.json.encode", "task:wait"] {
            #expect(specs.contains(name), "\(name) has no documentation")
        }
    }

    /// Every function of the module, called with arguments of every wrong type, raises a
    /// Lua error (or returns) and never crashes the process.
    @Test func everyFunctionSurvivesWrongArguments() async throws {
        let text = try await onLuaThread {
            try KVMState().run("""
                -- no long sleeps and nothing that prints: 0.001 rather than 0.5, `type` rather than print
                local values = { "nil", 0, -1, 0.001, 0/0, math.huge, "x", "", true, false, {}, { 1 }, type,
                                 coroutine.create(type), io.stdout, kvm.json.null }
                local function arg(v) if v == "nil" then return nil end return v end
                local functions = {}
                local function collect(t, prefix, seen)
                  if seen[t] then return end
                  seen[t] = true
                  for k, v in pairs(t) do
                    if type(v) == "function" then functions[#functions + 1] = { prefix .. k, v }
                    elseif type(v) == "table" then collect(v, prefix .. k .. ".", seen) end
                  end
                end
                collect(kvm, "kvm.", {})
                local task = kvm.spawn(function() end)
                for name, f in pairs(getmetatable(task).__methods) do functions[#functions + 1] = { "task:" .. name, f } end
                table.sort(functions, function(a, b) return a[1] < b[1] end)
                local calls, errors = 0, 0
                for _, entry in ipairs(functions) do
                  local f = entry[2]
                  local function try(...)
                    calls = calls + 1
                    -- kvm.timeout/kvm.spawn with a function argument would run it: use a safe one
                    local ok = pcall(kvm.timeout, 1, f, ...)
                    if not ok then errors = errors + 1 end
                  end
                  try()
                  for _, a in ipairs(values) do
                    try(arg(a))
                    try(task, arg(a))
                    for _, b in ipairs(values) do try(arg(a), arg(b)) end
                  end
                end
                return #functions > 10, calls > 1000, errors > 100
                """)
        }
        #expect(text == "true\ttrue\ttrue")
    }
}
