import CLua
import CLuaRuntime
import KVMLua
import LuaBridge
import NanoKVM

#if canImport(Glibc)
    import Glibc
#endif

/// Several devices on the command line (`--device` more than once or with a glob, `--group`,
/// `--sim N`): the script runs once per device, concurrently, each run with its own globals;
/// output is prefixed with the device's name; a summary, JUnit and JSON files tell what
/// happened where. The orchestration is Lua (`FleetRunner.driver`) on the one scheduler.
extension Interpreter {
    /// The devices of the command line when it names a fleet; nil for one device (or none),
    /// which keeps the single-device behaviour.
    func fleetTargets() throws(NanoKVMError) -> [FleetTarget]? {
        let fleetOutput = options.junit != nil || options.json != nil || options.outputDir != nil
        if let count = options.simulatorCount {
            guard options.devices.isEmpty, options.groups.isEmpty else {
                throw NanoKVMError(.usage, "use either --sim or --device/--group, not both")
            }
            return (1...count).map { FleetTarget(name: "sim-\($0)", target: "") }
        }
        let named = !options.devices.isEmpty || !options.groups.isEmpty
        guard named else {
            if fleetOutput, options.simulator != nil { return [FleetTarget(name: "sim", target: "")] }
            if fleetOutput {
                throw NanoKVMError(.usage, "--junit, --json and --output-dir report on the devices of --device, --group or --sim; none is given")
            }
            return nil
        }
        if options.simulator != nil { throw NanoKVMError(.usage, "use either --device or --sim, not both") }
        let single = options.devices.count == 1 && options.groups.isEmpty && !FleetTargets.isGlob(options.devices[0])
        if single, !fleetOutput { return nil }
        let targets = try FleetTargets.resolve(patterns: options.devices, groups: options.groups, config: try KVMConfig.load())
        if targets.count == 1, options.groups.isEmpty, !fleetOutput { return nil }
        return targets
    }

    /// Runs the script, `-e` chunks or `--play` once per device; true when every run succeeded.
    func runFleet(_ targets: [FleetTarget]) throws(LuaRuntimeError) -> Bool {
        if options.interactive || (options.scriptIndex < 1 && !options.hasExecute && options.play == nil && Output.stdinIsTerminal) {
            message("several devices need a script, -e or --play (the REPL drives one device; in it, kvm.devices() connects to several)")
            return false
        }
        if let directory = options.outputDir {
            var info = stat()
            if stat(directory, &info) != 0, mkdir(directory, 0o755) != 0 {
                message("--output-dir: cannot create \(directory): \(String(cString: strerror(errno)))")
                return false
            }
        }
        Credentials.reusePromptedPasswordsForFleet()
        _ = kvm_lua_gc_restart(L)
        _ = kvm_lua_gc_generational(L)
        // LUA_INIT, -l and -W act on the shared state once; -e chunks and the script run per device.
        if !options.ignoreEnvironment, handleInitVariable() != LUA_OK { return false }
        for action in options.actions {
            switch action {
            case .execute: continue
            case let .require(library): if requireLibrary(library) != LUA_OK { return false }
            case .warningsOn: lua_warning(L, "@on", 0)
            }
        }
        var chunks: [LuaData] = []
        for action in options.actions {
            if case let .execute(code) = action {
                chunks.append(.fields(["code": .string(code), "name": .string("=(command line)")]))
            }
        }
        if let play = options.play {
            chunks.append(.fields(["play": .string(play)]))
        } else if options.scriptIndex > 0 {
            let index = options.scriptIndex
            let scriptArguments = LuaData.array(arguments[(index + 1)...].map { .string($0) })
            if options.scriptIsStdin {
                chunks.append(.fields(["stdin": .bool(true), "args": scriptArguments]))
            } else {
                chunks.append(.fields(["file": .string(arguments[index]), "args": scriptArguments]))
            }
        } else if !options.hasExecute {
            chunks.append(.fields(["stdin": .bool(true), "args": .array([])]))
        }
        let colour = Output.stdoutIsTerminal && Output.colourAllowed
        let spec = LuaData.fields([
            "targets": .array(
                targets.map { target in
                    .fields([
                        "name": .string(target.name), "target": .string(target.target), "sim": .bool(target.target.isEmpty),
                        "file": .string(FleetTargets.fileName(target.name)),
                    ])
                }),
            "chunks": .array(chunks),
            "limit": .int(options.limit ?? 32),
            "colour": .bool(colour),
            "error_colour": .bool(isatty(2) != 0 && Output.colourAllowed),
            "output_dir": options.outputDir.map { .string($0) } ?? .null,
            "junit": options.junit.map { .string($0) } ?? .null,
            "json": options.json.map { .string($0) } ?? .null,
            "generation": .string(options.simulator ?? "current"),
            "insecure": .bool(options.insecure),
            "script": .string(scriptLabel),
        ])
        guard runtime.load(FleetRunner.driver, chunkName: "=kvmlua fleet") == LUA_OK else {
            message("internal error: the fleet driver does not compile: \(runtime.string(at: -1) ?? "?")")
            return false
        }
        LuaStack(L).push(spec)
        let status = call(1, results: 1)
        guard status == LUA_OK else {
            report(status)
            return false
        }
        let succeeded = lua_toboolean(L, -1) != 0
        kvm_lua_pop(L, 1)
        let finished = finishTasks()
        return succeeded && finished
    }

    /// What the runs are, for the summary and the JUnit suite's name.
    private var scriptLabel: String {
        if let play = options.play { return "--play \(play)" }
        if options.scriptIndex > 0 { return options.scriptIsStdin ? "stdin" : arguments[options.scriptIndex] }
        return options.hasExecute ? "-e" : "stdin"
    }
}

enum FleetRunner {
    /// Called with the spec table the Swift side builds; returns true when every run succeeded.
    static let driver = #"""
        local spec = ...
        local kvm, G = kvm, _G
        local real_stdout, real_stderr, real_io = io.stdout, io.stderr, io
        local type, tostring, select, pairs, ipairs, next = type, tostring, select, pairs, ipairs, next
        local concat, unpack, rep, format = table.concat, table.unpack, string.rep, string.format
        local now = kvm.now

        local targets = spec.targets
        local width = 6
        for _, target in ipairs(targets) do width = math.max(width, utf8.len(target.name) or #target.name) end
        local palette = { "36", "33", "35", "32", "34", "96", "93", "95", "92", "94" }
        local function padded(text, size) return text .. rep(" ", size - (utf8.len(text) or #text)) end
        local function paint(on, code, text) return on and ("\27[" .. code .. "m" .. text .. "\27[0m") or text end

        -- Output of a run: complete lines go out at once with the device's name in front; the
        -- rest waits for its newline (or the end of the run). Everything is also kept for the
        -- JUnit system-out and the JSON output.
        local function emit(run, stream, text)
          run.output[#run.output + 1] = text
          if run.file then
            run.file:write(text)
            run.file:flush()
            return
          end
          local data = run.pending[stream] .. text
          local start = 1
          while true do
            local newline = data:find("\n", start, true)
            if not newline then break end
            stream:write(stream == real_stderr and run.error_prefix or run.prefix, data:sub(start, newline))
            start = newline + 1
          end
          run.pending[stream] = data:sub(start)
          stream:flush()
        end

        local function flush_pending(run)
          for _, stream in ipairs({ real_stdout, real_stderr }) do
            if run.pending[stream] ~= "" then emit(run, stream, "\n") end
          end
        end

        local function file_proxy(run, stream)
          local proxy = {}
          local methods = {
            write = function(self, ...)
              for i = 1, select("#", ...) do
                local value = select(i, ...)
                local kind = type(value)
                if kind ~= "string" and kind ~= "number" then
                  error("bad argument #" .. i .. " to 'write' (string expected, got " .. kind .. ")", 2)
                end
                emit(run, stream, kind == "number" and format(math.type(value) == "integer" and "%d" or "%.14g", value) or value)
              end
              return self
            end,
            flush = function(self) return self end,
            setvbuf = function() return true end,
            close = function() return nil, "cannot close standard file" end,
            seek = function() return nil, "cannot seek: the output of a fleet run goes through kvmlua" end,
          }
          return setmetatable(proxy, {
            __index = methods,
            __name = "FILE*",
            __tostring = function() return tostring(stream) end,
          })
        end

        -- A library seen through a table of the run's own: assigning to it (string.x = ...)
        -- changes this run only.
        local function shadow(library)
          return setmetatable({}, {
            __index = library,
            __pairs = function(self)
              local merged = {}
              for key, value in next, library do merged[key] = value end
              for key, value in next, self do merged[key] = value end
              return next, merged, nil
            end,
          })
        end

        local exit_marker, plain_marker = {}, {}

        local function make_environment(run)
          local env = {}
          for _, name in ipairs({ "string", "table", "math", "utf8", "coroutine", "debug", "package", "os", "kvm" }) do
            if type(G[name]) == "table" then env[name] = shadow(G[name]) end
          end
          local out, err = file_proxy(run, real_stdout), file_proxy(run, real_stderr)
          local run_io = shadow(real_io)
          run_io.stdout, run_io.stderr = out, err
          run_io.write = function(...) return out:write(...) end
          run_io.output = function(file)
            if file == nil then return out end
            return real_io.output(file)
          end
          run_io.type = function(file)
            if file == out or file == err then return "file" end
            return real_io.type(file)
          end
          env.io = run_io
          env.print = function(...)
            local parts = {}
            for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
            emit(run, real_stdout, concat(parts, "\t") .. "\n")
          end
          -- os.exit ends this run only: true or 0 is success, anything else a failure.
          env.os.exit = function(code)
            error({ [exit_marker] = true, code = code == nil and true or code }, 0)
          end
          -- Tasks a run spawns belong to it: the run ends when they have.
          local spawn = kvm.spawn
          env.kvm.spawn = function(...)
            local task = spawn(...)
            run.tasks[#run.tasks + 1] = task
            return task
          end
          env.dev = run.dev
          local arguments = {}
          for key, value in pairs(type(G.arg) == "table" and G.arg or {}) do arguments[key] = value end
          env.arg = arguments
          env._G = env
          return setmetatable(env, { __index = G })
        end

        -- The error of a run: its kind, one line, and the text with traceback for the logs.
        local function describe(failure, traceback, without_position)
          if type(failure) == "table" and failure[exit_marker] then
            local code = failure.code
            if code == true or code == 0 then return nil end
            local text = "os.exit(" .. tostring(code) .. ")"
            return { kind = "exit", line = text, text = text }
          end
          if type(failure) == "table" and failure[plain_marker] then
            failure, traceback, without_position = failure.failure, nil, true
          end
          local kind, text = "error", nil
          if type(failure) == "table" and getmetatable(failure) == kvm.Error then
            kind = failure.kind or "api"
            text = (not without_position and failure.where or "") .. tostring(failure):gsub("^kvm: ", "")
          elseif type(failure) == "string" or type(failure) == "number" then
            text = tostring(failure)
          else
            local ok, shown = pcall(tostring, failure)
            text = ok and type(shown) == "string" and shown or ("(error object is a " .. type(failure) .. " value)")
          end
          if kind == "cancelled" or text:find("interrupted", 1, true) then kind = "interrupted" end
          local line = text:match("^[^\n]*")
          local full = text
          if traceback and kind ~= "interrupted" and kind ~= "exit" then full = text .. "\n" .. traceback end
          return { kind = kind, line = line, text = full }
        end

        local function load_chunks(env)
          local functions = {}
          for _, chunk in ipairs(spec.chunks) do
            local fn, problem
            if chunk.play then
              -- As with one device, a --play failure is one line: no position, no traceback.
              local path = chunk.play
              fn = function()
                local ok, failure = pcall(function() kvm.macro.load(path):play(env.dev) end)
                if not ok then error({ [plain_marker] = true, failure = failure }, 0) end
              end
            elseif chunk.file then
              fn, problem = loadfile(chunk.file, "bt", env)
            elseif chunk.stdin then
              fn, problem = load(spec.stdin_code, "=stdin", "bt", env)
            else
              fn, problem = load(chunk.code, chunk.name, "bt", env)
            end
            if not fn then error(problem, 0) end
            functions[#functions + 1] = { fn = fn, args = chunk.args or {} }
          end
          return functions
        end

        for _, chunk in ipairs(spec.chunks) do
          if chunk.stdin then spec.stdin_code = real_io.read("a") or "" end
        end

        local runs = {}
        for index, target in ipairs(targets) do
          local code = palette[(index - 1) % #palette + 1]
          runs[index] = {
            index = index, name = target.name, target = target.target, sim = target.sim, file_name = target.file,
            prefix = paint(spec.colour, code, padded(target.name, width)) .. " | ",
            error_prefix = paint(spec.error_colour, code, padded(target.name, width)) .. " | ",
            pending = { [real_stdout] = "", [real_stderr] = "" }, output = {}, tasks = {},
          }
        end

        local finished = 0
        local started = now()

        local function run_one(run)
          run.started = now()
          if spec.output_dir then
            local path = spec.output_dir .. "/" .. run.file_name .. ".log"
            local file, problem = real_io.open(path, "w")
            if not file then
              run.failure = { kind = "usage", line = problem, text = problem }
            end
            run.file = file
          end
          if not run.failure then
            local traceback
            local function handler(failure)
              -- The script's frames only: the driver's own (from its xpcall down) are cut off.
              traceback = debug.traceback(nil, 2):gsub("\n\t%[C%]: in function 'xpcall'.*$", "")
              return failure
            end
            local ok, failure = xpcall(function()
              if run.sim then
                run.dev = kvm.sim({ name = run.name, generation = spec.generation, scene = "machine" })
              else
                run.dev = kvm.connect(run.target, { name = run.name, insecure = spec.insecure or nil })
              end
            end, function(failure) return failure end)
            local connected = ok
            if ok then
              local env = make_environment(run)
              local loaded
              ok, loaded = pcall(load_chunks, env)
              if ok then
                -- Called from C (xpcall), each chunk is a "main chunk" in tracebacks, as with lua.
                for _, chunk in ipairs(loaded) do
                  ok, failure = xpcall(chunk.fn, handler, unpack(chunk.args))
                  if not ok then break end
                end
              else
                failure = loaded
              end
              for _, task in ipairs(run.tasks) do
                if not ok then break end
                ok, failure = pcall(task.wait, task)
              end
            end
            if not ok then run.failure = describe(failure, traceback, not connected) end
          end
          if run.dev then pcall(run.dev.close, run.dev) end
          flush_pending(run)
          if run.failure then emit(run, real_stderr, run.failure.text .. "\n") end
          flush_pending(run)
          if run.file then run.file:close() end
          run.duration = now() - run.started
          run.done = true
          finished = finished + 1
          if spec.output_dir then
            local result = run.failure and paint(spec.error_colour, "31", run.failure.kind) or paint(spec.error_colour, "32", "ok")
            real_stderr:write(format("[%d/%d] %s %s (%.2f s)%s\n", finished, #runs, padded(run.name, width), result,
              run.duration, run.failure and (": " .. run.failure.line) or ""))
          end
        end

        -- A pool of `limit` workers. Ctrl-C cancels every task (the scheduler's default): the
        -- waits below then fail, and they wait again until every worker has ended, so each run's
        -- output and cleanup come before the summary.
        local interrupted = false
        local next_run = 1
        local function worker()
          while next_run <= #runs and not interrupted do
            local run = runs[next_run]
            next_run = next_run + 1
            run_one(run)
          end
        end
        local workers = {}
        for w = 1, math.min(spec.limit, #runs) do workers[w] = kvm.spawn(worker) end
        for _, w in ipairs(workers) do
          while not pcall(w.wait, w) do
            interrupted = true
            if w:done() then break end
          end
        end
        for _, run in ipairs(runs) do
          if not run.done then
            run.failure = run.failure or { kind = "interrupted", line = "interrupted", text = "interrupted" }
            run.duration = run.started and (now() - run.started) or 0
            if run.dev then pcall(run.dev.close, run.dev) end
          end
        end
        local wall = now() - started

        -- The summary: one line per device, then the totals (on stderr, so stdout stays the runs' output).
        local failed = 0
        local colour = spec.error_colour
        real_stderr:write("\n", padded("device", width), "  result       time  error\n")
        for _, run in ipairs(runs) do
          local result = run.failure and run.failure.kind or "ok"
          if run.failure then failed = failed + 1 end
          real_stderr:write(padded(run.name, width), "  ", paint(colour, run.failure and "31" or "32", padded(result, 11)),
            format("%6.2f s", run.duration or 0), run.failure and ("  " .. run.failure.line) or "", "\n")
        end
        real_stderr:write(format("%d device%s: %d ok, %d failed, %.2f s%s\n", #runs, #runs == 1 and "" or "s",
          #runs - failed, failed, wall, interrupted and " (interrupted)" or ""))

        local function clean_utf8(text)
          if utf8.len(text) then return text end
          return (text:gsub("[\128-\255]", "?"))
        end
        local function xml(text)
          text = clean_utf8(text):gsub("[%z\1-\8\11\12\14-\31\127]", "")
          return (text:gsub('[&<>"]', { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
        end
        local timestamp = os.date("!%Y-%m-%dT%H:%M:%S")

        local function write_file(path, text, what)
          local file, problem = real_io.open(path, "w")
          if not file then
            real_stderr:write("kvmlua: ", what, ": ", problem, "\n")
            return false
          end
          file:write(text)
          file:close()
          return true
        end

        local files_ok = true
        if spec.junit then
          local parts = {
            '<?xml version="1.0" encoding="UTF-8"?>\n',
            format('<testsuites name="kvmlua" tests="%d" failures="%d" errors="0" time="%.3f">\n', #runs, failed, wall),
            format('  <testsuite name="%s" tests="%d" failures="%d" errors="0" skipped="0" time="%.3f" timestamp="%s">\n',
              xml(spec.script), #runs, failed, wall, timestamp),
          }
          for _, run in ipairs(runs) do
            parts[#parts + 1] = format('    <testcase name="%s" classname="%s" time="%.3f">\n', xml(run.name),
              xml("kvmlua." .. spec.script), run.duration or 0)
            if run.failure then
              parts[#parts + 1] = format('      <failure message="%s" type="%s">%s</failure>\n', xml(run.failure.line),
                xml(run.failure.kind), xml(run.failure.text))
            end
            parts[#parts + 1] = "      <system-out>" .. xml(concat(run.output)) .. "</system-out>\n"
            parts[#parts + 1] = "    </testcase>\n"
          end
          parts[#parts + 1] = "  </testsuite>\n</testsuites>\n"
          files_ok = write_file(spec.junit, concat(parts), "--junit") and files_ok
        end
        if spec.json then
          local list = {}
          for _, run in ipairs(runs) do
            list[#list + 1] = {
              device = run.name,
              target = run.sim and "sim" or run.target,
              ok = run.failure == nil,
              result = run.failure and run.failure.kind or "ok",
              error = run.failure and run.failure.line or kvm.json.null,
              duration = tonumber(format("%.3f", run.duration or 0)),
              output = clean_utf8(concat(run.output)),
            }
          end
          files_ok = write_file(spec.json, kvm.json.encode(kvm.json.array(list)) .. "\n", "--json") and files_ok
        end
        return failed == 0 and files_ok and not interrupted
        """#
}
