import CLua
import LuaBridge

/// The REPL's echo of results: exactly `print`'s text for everything but tables, which are
/// shown as Lua-like constructors (depth and item limits, cycles marked, keys sorted).
enum Pretty {
    static let originalPrintKey = "kvmlua.print"
    static let formatterKey = "kvmlua.pretty"

    /// Remembers the standard `print` (right after the libraries are opened), so the REPL can
    /// tell whether a script replaced it.
    static func captureOriginalPrint(_ runtime: LuaRuntime) {
        runtime.pushGlobal("print")
        lua_setfield(runtime.L, kvm_lua_registryindex(), originalPrintKey)
    }

    static func isOriginalPrint(_ runtime: LuaRuntime, at index: Int32) -> Bool {
        let L = runtime.L
        let value = lua_absindex(L, index)
        lua_getfield(L, kvm_lua_registryindex(), originalPrintKey)
        defer { kvm_lua_pop(L, 1) }
        return lua_type(L, -1) == LUA_TFUNCTION && lua_rawequal(L, value, -1) != 0
    }

    /// Pushes the formatter function `(colour, ...) -> string`, compiling it once.
    static func pushFormatter(_ runtime: LuaRuntime) {
        let L = runtime.L
        if lua_getfield(L, kvm_lua_registryindex(), formatterKey) == LUA_TFUNCTION { return }
        kvm_lua_pop(L, 1)
        if runtime.load(formatterSource, chunkName: "=kvmlua.pretty") == LUA_OK, kvm_lua_pcall(L, 0, 1, 0) == LUA_OK {
            lua_pushvalue(L, -1)
            lua_setfield(L, kvm_lua_registryindex(), formatterKey)
        } else {
            // Cannot happen with the source below; fall back to the standard print's text.
            kvm_lua_pop(L, 1)
            runtime.pushGlobal("tostring")
        }
    }

    static let formatterSource = #"""
        local type, tostring, rawget, getmetatable, select, next, ipairs = type, tostring, rawget, getmetatable, select, next, ipairs
        local concat, sort, format, rep = table.concat, table.sort, string.format, string.rep
        local MAX_DEPTH, MAX_ITEMS, WIDTH = 5, 100, 78
        local keywords = {}
        for word in ([[and break do else elseif end false for function goto if in local nil not or
                       repeat return then true until while]]):gmatch("%a+") do keywords[word] = true end

        local function quote(s)
          return '"' .. s:gsub('[%c"\\]', function(c)
            local named = { ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r", ['"'] = '\\"', ["\\"] = "\\\\" }
            return named[c] or format("\\%03d", c:byte())
          end) .. '"'
        end

        local function visible_length(s) return #s:gsub("\27%[[%d;]*m", "") end

        return function(colour, ...)
          local paint = function(_, text) return text end
          if colour then
            local codes = { string = "\27[32m", number = "\27[36m", boolean = "\27[35m", ["nil"] = "\27[35m", dim = "\27[2m" }
            paint = function(kind, text)
              local code = codes[kind]
              return code and (code .. text .. "\27[0m") or text
            end
          end

          local function has_tostring(v)
            local mt = getmetatable(v)
            return mt ~= nil and (type(mt) ~= "table" or rawget(mt, "__tostring") ~= nil)
          end

          local function key_text(k)
            if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then return k end
            if type(k) == "string" then return "[" .. paint("string", quote(k)) .. "]" end
            return "[" .. paint(type(k), tostring(k)) .. "]"
          end

          local function key_before(a, b)
            local ta, tb = type(a), type(b)
            if ta ~= tb then return ta < tb end
            if ta == "number" or ta == "string" then return a < b end
            return tostring(a) < tostring(b)
          end

          local describe
          local function describe_table(t, depth, seen, indent)
            if seen[t] then return paint("dim", "<cycle: " .. tostring(t) .. ">") end
            if depth >= MAX_DEPTH then return "{...}" end
            seen[t] = true
            local items, n = {}, 0
            local length = #t
            for i = 1, length do
              if n >= MAX_ITEMS then break end
              n = n + 1
              items[n] = describe(rawget(t, i), depth + 1, seen, indent + 1)
            end
            local keys = {}
            for k in next, t do
              if not (type(k) == "number" and k == k // 1 and k >= 1 and k <= length) then keys[#keys + 1] = k end
            end
            sort(keys, key_before)
            local total = length + #keys
            for _, k in ipairs(keys) do
              if n >= MAX_ITEMS then break end
              n = n + 1
              items[n] = key_text(k) .. " = " .. describe(rawget(t, k), depth + 1, seen, indent + 1)
            end
            if total > n then items[n + 1] = paint("dim", "... (" .. (total - n) .. " more)") end
            seen[t] = nil
            if #items == 0 then return "{}" end
            local line = "{ " .. concat(items, ", ") .. " }"
            if visible_length(line) + indent * 2 <= WIDTH and not line:find("\n", 1, true) then return line end
            local pad = rep("  ", indent + 1)
            return "{\n" .. pad .. concat(items, ",\n" .. pad) .. ",\n" .. rep("  ", indent) .. "}"
          end

          function describe(v, depth, seen, indent)
            local t = type(v)
            if t == "table" and not has_tostring(v) then return describe_table(v, depth, seen, indent) end
            if depth == 0 then return tostring(v) end  -- as print shows it
            if t == "string" then return paint("string", quote(v)) end
            if t == "number" or t == "boolean" or t == "nil" then return paint(t, tostring(v)) end
            return tostring(v)
          end

          local parts = {}
          for i = 1, select("#", ...) do parts[i] = describe((select(i, ...)), 0, {}, 0) end
          return concat(parts, "\t")
        end
        """#
}
