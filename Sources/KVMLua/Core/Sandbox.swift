import CLua
import LuaBridge
import NanoKVM

#if canImport(Glibc)
    import Glibc
#endif

/// `--sandbox`: for scripts shared by others. No `os.execute`, `io.popen`, `package.loadlib`,
/// C modules, binary chunks or `debug` (beyond `debug.traceback`), and no file writes outside
/// the working directory, also through kvm functions that save files. `kvm` stays available.
public enum Sandbox {
    /// The directory writes are confined to, once the sandbox is on.
    nonisolated(unsafe) private(set) static var root: String?

    public static var isActive: Bool { root != nil }

    /// Whether a file may be written at `path` (always true without the sandbox).
    public static func allowsWrite(_ path: String) -> Bool {
        guard let root else { return true }
        return resolvedPath(path).map { $0 == root || $0.hasPrefix(root + "/") } ?? false
    }

    /// Raises a `permission` error unless `path` may be written (for kvm functions that save).
    public static func checkWrite(_ path: String) throws(NanoKVMError) {
        guard allowsWrite(path) else {
            throw NanoKVMError(.permission, "\(path): writing outside the working directory is not allowed (--sandbox)")
        }
    }

    /// The real absolute path `path` would be written at: the parent directory resolved with
    /// realpath, and the file itself followed if it is an existing symbolic link.
    static func resolvedPath(_ path: String) -> String? {
        guard !path.isEmpty else { return nil }
        var target = path
        // An existing symbolic link is judged by where it points.
        var info = stat()
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
            guard let real = realpath(path, nil) else { return nil }
            defer { free(real) }
            return String(cString: real)
        }
        if !target.hasPrefix("/") {
            guard let cwd = getcwd(nil, 0) else { return nil }
            defer { free(cwd) }
            target = String(cString: cwd) + "/" + target
        }
        let slash = target.lastIndex(of: "/") ?? target.startIndex
        let directory = String(target[..<slash])
        let name = String(target[target.index(after: slash)...])
        guard name != "..", name != "." else { return nil }
        guard let real = realpath(directory.isEmpty ? "/" : directory, nil) else { return nil }
        defer { free(real) }
        let base = String(cString: real)
        return name.isEmpty ? base : (base == "/" ? "/" + name : base + "/" + name)
    }

    /// Turns the sandbox on in `runtime` (after the standard libraries are open).
    public static func apply(to runtime: LuaRuntime) throws(LuaRuntimeError) {
        guard let cwd = getcwd(nil, 0), let real = realpath(cwd, nil) else {
            throw LuaRuntimeError("cannot determine the working directory for --sandbox")
        }
        root = String(cString: real)
        free(cwd)
        free(real)
        let L = runtime.L
        guard runtime.load(prelude, chunkName: "=sandbox") == LUA_OK else {
            throw LuaRuntimeError("internal sandbox chunk does not compile: \(runtime.string(at: -1) ?? "?")")
        }
        runtime.push(
            function: LuaFunctionSpec("sandbox.allows_write", "", body: { call in
                call.returning(.bool(allowsWrite(try call.string(1))))
            }), documented: false)
        if kvm_lua_pcall(L, 1, 0, 0) != LUA_OK {
            let message = runtime.string(at: -1) ?? "?"
            kvm_lua_pop(L, 1)
            throw LuaRuntimeError("cannot set up the sandbox: \(message)")
        }
    }

    static let prelude = #"""
        local allows_write = ...
        local error, type, select, setmetatable, ipairs = error, type, select, setmetatable, ipairs
        local debug_getinfo = debug.getinfo
        local function denied(what)
          local message = what .. " is not allowed in --sandbox mode"
          if kvm and kvm.Error then
            local info = debug_getinfo(3, "Sl")
            local where = info and info.currentline > 0 and (info.short_src .. ":" .. info.currentline .. ": ") or ""
            error(setmetatable({ kind = "permission", msg = message, where = where }, kvm.Error), 3)
          end
          error(message, 3)
        end
        local function writes(mode) return type(mode) == "string" and mode:find("[wa+]") ~= nil end
        local function outside(path)
          return path .. ": writing outside the working directory is not allowed (--sandbox)"
        end

        os.execute = function(command)
          if command == nil then return false end  -- "no shell available"
          denied("os.execute")
        end
        io.popen = function() denied("io.popen") end
        os.tmpname = function() denied("os.tmpname") end
        package.loadlib = function() denied("package.loadlib") end
        package.cpath = ""
        -- Only the preload and Lua-file searchers stay: no C modules.
        for i = #package.searchers, 3, -1 do table.remove(package.searchers, i) end

        local io_open, io_output, os_remove, os_rename = io.open, io.output, os.remove, os.rename
        io.open = function(path, mode, ...)
          if writes(mode) and type(path) == "string" and not allows_write(path) then
            return nil, outside(path), 13
          end
          return io_open(path, mode, ...)
        end
        io.output = function(file, ...)
          if type(file) == "string" and not allows_write(file) then error(outside(file), 2) end
          return io_output(file, ...)
        end
        os.remove = function(path, ...)
          if type(path) == "string" and not allows_write(path) then return nil, outside(path), 13 end
          return os_remove(path, ...)
        end
        os.rename = function(from, to, ...)
          for _, path in ipairs({ from, to }) do
            if type(path) == "string" and not allows_write(path) then return nil, outside(path), 13 end
          end
          return os_rename(from, to, ...)
        end

        -- Text chunks only: crafted bytecode can break out of any sandbox.
        local load_, loadfile_ = load, loadfile
        load = function(chunk, name, mode, ...)
          if select("#", ...) == 0 then return load_(chunk, name, "t") end
          return load_(chunk, name, "t", ...)
        end
        loadfile = function(path, mode, ...)
          if select("#", ...) == 0 then return loadfile_(path, "t") end
          return loadfile_(path, "t", ...)
        end
        dofile = function(path)
          local f = assert(loadfile(path))
          return f()
        end

        -- The debug library reaches everything (registry, upvalues, metatables of any type).
        local traceback = debug.traceback
        debug = { traceback = traceback }
        package.loaded.debug = debug
        """#
}
