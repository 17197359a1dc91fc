import CLua
import LuaBridge

/// `kvm.sleep`, `kvm.now`, `kvm.spawn`, `kvm.timeout`, `kvm.parallel` and the `Task` object.
enum ConcurrencyBindings {
    static var functions: [LuaFunctionSpec] {[
        LuaFunctionSpec(
            "kvm.sleep", signature: "kvm.sleep(s)",
            """
            Suspends the calling task for `s` seconds (a number >= 0, millisecond resolution).
            Other tasks keep running meanwhile; Ctrl-C interrupts it with a `cancelled` error.
            """,
            body: { call in
                let seconds = try call.number(1)
                guard seconds >= 0, seconds.isFinite else {
                    throw call.argumentError(1, "seconds must be a finite number >= 0")
                }
                return .await(.sleep(seconds))
            }),
        LuaFunctionSpec(
            "kvm.now", signature: "kvm.now()", returns: "number",
            "Monotonic time in seconds (a float). Only differences between two values mean something.",
            body: { call in call.returning(.number(monotonicSeconds())) }),
        LuaFunctionSpec(
            "kvm.spawn", signature: "kvm.spawn(fn, ...)", returns: "Task",
            """
            Runs `fn(...)` concurrently in a new task (a coroutine the scheduler owns); it starts
            as soon as the caller waits for something. `task:wait()` returns its results or
            raises its error; `task:cancel()` cancels it. At the end of a script, kvmlua waits
            for tasks still running.
            """,
            body: { call in
                try call.requireFunction(1)
                guard let task = call.runtime.scheduler.spawn(functionAt: 1, argumentCount: call.count - 1, on: call.L)
                else { throw LuaRuntimeError("cannot create a task: not enough memory") }
                return call.returning(object: TaskHandle(task))
            }),
        LuaFunctionSpec(
            "kvm.timeout", signature: "kvm.timeout(s, fn, ...)", returns: "results of fn",
            """
            Calls `fn(...)` in a task and returns its results; if it has not finished after `s`
            seconds it is cancelled and `kvm.timeout` raises a `timeout` error.
            """,
            body: { call in
                let seconds = try call.number(1)
                guard seconds >= 0, !seconds.isNaN else { throw call.argumentError(1, "seconds must be a number >= 0") }
                try call.requireFunction(2)
                let scheduler = call.runtime.scheduler
                guard let task = scheduler.spawn(functionAt: 2, argumentCount: call.count - 2, on: call.L)
                else { throw LuaRuntimeError("cannot create a task: not enough memory") }
                return .await(timeoutAwaitable(task: task, seconds: seconds, scheduler: scheduler))
            }),
    ]}

    /// Waits for `task`; after `seconds` cancels it and, once it has ended, fails with `timeout`.
    static func timeoutAwaitable(task: LuaTask, seconds: Double, scheduler: LuaScheduler) -> LuaAwaitable {
        LuaAwaitable { operation in
            var timedOut = false
            let timer = scheduler.schedule(after: seconds) {
                timedOut = true
                scheduler.cancel(task, message: "timeout")
            }
            let handler = task.onFinish { [unowned operation] finished in
                scheduler.cancelTimer(timer)
                if timedOut, finished.state == .failed {
                    scheduler.markObserved(finished)
                    operation.fail(LuaTimeoutError("timed out after \(formatSeconds(seconds)) s"))
                } else {
                    operation.succeedOrFail(with: finished)
                }
            }
            operation.onCancel = {
                task.removeFinishHandler(handler)
                scheduler.cancelTimer(timer)
                scheduler.cancel(task)
            }
        }
    }

    static func formatSeconds(_ seconds: Double) -> String {
        seconds == seconds.rounded() && seconds < 1e15 ? String(Int64(seconds)) : String(seconds)
    }

    /// Parts of the module written in Lua on top of the Swift functions.
    static let luaPrelude = #"""
        local kvm = kvm
        local spawn, type, ipairs, pcall, error, select = kvm.spawn, type, ipairs, pcall, error, select
        local math_min, table_sort = math.min, table.sort

        function kvm.parallel(list, fn, opts)
          if type(list) ~= "table" then
            error(kvm._usage("bad argument #1 to 'kvm.parallel' (table expected, got " .. type(list) .. ")"), 2)
          end
          if type(fn) ~= "function" then
            error(kvm._usage("bad argument #2 to 'kvm.parallel' (function expected, got " .. type(fn) .. ")"), 2)
          end
          if opts ~= nil and type(opts) ~= "table" then
            error(kvm._usage("bad argument #3 to 'kvm.parallel' (table expected, got " .. type(opts) .. ")"), 2)
          end
          local problem = opts and kvm._option_problem(opts, "limit")
          if problem then error(kvm._usage("bad argument #3 to 'kvm.parallel' (" .. problem .. ")"), 2) end
          local n = #list
          local limit = opts and opts.limit or n
          if type(limit) ~= "number" or limit < 1 or limit ~= limit // 1 then
            error(kvm._usage("bad argument #3 to 'kvm.parallel' (field 'limit' must be an integer >= 1)"), 2)
          end
          local results, failures = {}, {}
          local next_index = 1
          local function worker()
            while next_index <= n do
              local i = next_index
              next_index = i + 1
              local ok, value = pcall(fn, list[i])
              if ok then results[i] = value else failures[#failures + 1] = { index = i, err = value } end
            end
          end
          local workers = {}
          for w = 1, math_min(limit, n) do workers[w] = spawn(worker) end
          local ok, err = pcall(function()
            for _, w in ipairs(workers) do w:wait() end
          end)
          if not ok then
            for _, w in ipairs(workers) do w:cancel() end
            error(err, 0)
          end
          if #failures > 0 then
            table_sort(failures, function(a, b) return a.index < b.index end)
            local first = failures[1].err
            if type(first) == "table" then
              local others = {}
              for k = 2, #failures do others[#others + 1] = failures[k].err end
              first.errors = others
            end
            error(first, 0)
          end
          return results
        end
        """#

    static func documentLuaFunctions(in runtime: LuaRuntime) {
        let L = runtime.L
        runtime.pushGlobal("kvm")
        LuaStack(L).rawField(-1, "parallel")
        runtime.document(
            functionOnTop: LuaFunctionSpec(
                "kvm.parallel", signature: "kvm.parallel(list, fn [, opts])", returns: "table", options: ["limit"],
                """
                Calls `fn(item)` for every item of `list` concurrently (`opts.limit` bounds how many
                run at once), waits for all, and returns their first results in list order. If any
                failed, raises the first error (by list order) after all finished, with the other
                errors attached as `err.errors` when the error is a table.
                """, body: nil))
        kvm_lua_pop(L, 2)
    }
}

/// The Lua-side object of a task.
final class TaskHandle {
    let task: LuaTask
    init(_ task: LuaTask) { self.task = task }
}

enum TaskBindings {
    static let typeName = "kvm.Task"

    static func registerTaskType(in runtime: LuaRuntime) {
        runtime.registerType(
            TaskHandle.self, name: typeName, methods: methods,
            properties: ["id": { handle, stack in lua_pushinteger(stack.L, lua_Integer(handle.task.id)) }],
            tostring: { "kvm.Task \($0.task.id) (\($0.task.statusName))" })
    }

    /// `kvm._usage(msg)` builds a usage error for the Lua-written parts of the module.
    static var usageFunction: LuaFunctionSpec { LuaFunctionSpec("kvm._usage", "", body: { call in
        let message = try call.string(1)
        KVMErrors.pushTable(for: .init(.usage, message), on: call.L)
        return .values(1)
    }) }

    /// `kvm._option_problem(opts, known...)`: the "unknown option" message for the first key of
    /// `opts` that is not one of `known`, or nil, for the Lua-written functions' options tables.
    static var optionProblemFunction: LuaFunctionSpec { LuaFunctionSpec("kvm._option_problem", "", body: { call in
        let table = try call.requireTable(1)
        var known: [String] = []
        if call.count >= 2 { for index in 2...call.count { known.append(try call.string(index)) } }
        return call.returning(call.unknownOption(in: table, known: known).map(LuaData.string) ?? .null)
    }) }

    static func handle(_ call: LuaCall) throws(LuaUsageError) -> TaskHandle {
        try call.object(1, as: TaskHandle.self, typeName: typeName)
    }

    static var methods: [LuaFunctionSpec] {[
        LuaFunctionSpec(
            "task:wait", signature: "task:wait()", returns: "results of the task's function",
            "Waits until the task has finished and returns its results, or raises its error.",
            body: { call in
                let handle = try handle(call)
                if handle.task === call.runtime.scheduler.currentTask {
                    throw LuaUsageError("a task cannot wait for itself")
                }
                return .await(call.runtime.scheduler.wait(for: handle.task))
            }),
        LuaFunctionSpec(
            "task:cancel", signature: "task:cancel()",
            """
            Cancels the task: what it is waiting for fails with a `cancelled` error (so its
            cleanup code runs), and every later wait in it fails the same way.
            """,
            body: { call in
                let handle = try handle(call)
                call.runtime.scheduler.cancel(handle.task)
                return .none
            }),
        LuaFunctionSpec(
            "task:status", signature: "task:status()", returns: "string",
            "`\"ready\"`, `\"running\"`, `\"waiting\"`, `\"done\"`, `\"failed\"` or `\"cancelled\"`.",
            body: { call in call.returning(.string(try handle(call).task.statusName)) }),
        LuaFunctionSpec(
            "task:done", signature: "task:done()", returns: "boolean",
            "Whether the task has finished (successfully or not).",
            body: { call in call.returning(.bool(try handle(call).task.isFinished)) }),
    ]}
}
