import CLua
import CReadline
import LuaBridge

#if canImport(Glibc)
    import Glibc
#endif

/// Tab completion of globals, keywords, table fields (following `__index` tables) and
/// methods after `:` (`kvm.<Tab>`, `dev:<Tab>`). Only raw access: completing never runs
/// Lua code, so it cannot fail or have side effects.
enum Completion {
    nonisolated(unsafe) static var runtime: LuaRuntime?

    static let keywords = [
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
        "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    ]


    /// Full words (with the typed prefix) that complete `word`.
    static func candidates(for word: String, runtime: LuaRuntime) -> [String] {
        let L = runtime.L
        let top = lua_gettop(L)
        defer { lua_settop(L, top) }
        guard lua_checkstack(L, 40) != 0 else { return [] }

        let separatorIndex = word.lastIndex(where: { $0 == "." || $0 == ":" })
        let isMethod = separatorIndex.map { word[$0] == ":" } ?? false
        let partial = separatorIndex.map { String(word[word.index(after: $0)...]) } ?? word
        let prefix = separatorIndex.map { String(word[...$0]) } ?? ""

        kvm_lua_pushglobaltable(L)
        if let separatorIndex {
            let path = word[..<separatorIndex].split(whereSeparator: { $0 == "." || $0 == ":" })
            guard !path.isEmpty else { return [] }
            for component in path {
                guard lookUp(String(component), in: -1, on: L) else { return [] }
                kvm_lua_remove(L, -2)
            }
        }
        var names = Set<String>()
        var kinds: [String: LuaType] = [:]
        collectKeys(of: -1, on: L, into: &names, kinds: &kinds, depth: 0)
        if separatorIndex == nil { for keyword in keywords { names.insert(keyword) } }
        // Names starting with "_" are internal unless asked for (luaprompt's hidden prefix).
        var result = names.filter {
            $0.hasPrefix(partial) && isIdentifier($0) && (!$0.hasPrefix("_") || partial.hasPrefix("_"))
        }
        if isMethod { result = result.filter { kinds[$0] == .function } }
        let sorted = result.sorted()
        if sorted.count == 1, let only = sorted.first {
            let suffix: String
            switch kinds[only] {
            case .function?: suffix = "("
            case .table?: suffix = isMethod ? "" : "."
            case .userdata?: suffix = isMethod ? "" : ":"
            default: suffix = ""
            }
            return [prefix + only + suffix]
        }
        return sorted.map { prefix + $0 }
    }

    /// Pushes the field `name` of the value at `index`: raw, then through `__index` tables
    /// (and for objects the methods table). False, with the stack unchanged, when absent.
    static func lookUp(_ name: String, in index: Int32, on L: OpaquePointer) -> Bool {
        let stack = LuaStack(L)
        let top = lua_gettop(L)
        lua_pushvalue(L, index)
        for _ in 0..<10 {
            if lua_type(L, -1) == LUA_TTABLE {
                if stack.rawField(-1, name) != .nil {
                    kvm_lua_remove(L, -2)
                    return true
                }
                kvm_lua_pop(L, 1)
            }
            guard lua_getmetatable(L, -1) != 0 else { break }
            var found = false
            for field in ["__methods", "__index"] {
                if stack.rawField(-1, field) == .table {
                    found = true
                    break
                }
                kvm_lua_pop(L, 1)
            }
            guard found else { break }
            kvm_lua_replace(L, -3)  // the next table in the chain replaces the current value
            kvm_lua_pop(L, 1)  // the metatable
        }
        lua_settop(L, top)
        return false
    }

    /// Adds the string keys of the table (or object) at `index` and of its `__index` chain.
    static func collectKeys(of index: Int32, on L: OpaquePointer, into names: inout Set<String>, kinds: inout [String: LuaType], depth: Int) {
        guard depth < 10 else { return }
        let value = lua_absindex(L, index)
        let stack = LuaStack(L)
        if lua_type(L, value) == LUA_TTABLE {
            lua_pushnil(L)
            while lua_next(L, value) != 0 {
                if lua_type(L, -2) == LUA_TSTRING, let key = stack.string(at: -2) {
                    names.insert(key)
                    if kinds[key] == nil { kinds[key] = stack.type(at: -1) }
                }
                kvm_lua_pop(L, 1)
            }
        }
        guard lua_getmetatable(L, value) != 0 else { return }
        let metatable = lua_gettop(L)
        if stack.rawField(metatable, "__properties") == .table {
            let count = lua_rawlen(L, -1)
            if count > 0 {
                for i in 1...count {
                    lua_rawgeti(L, -1, lua_Integer(i))
                    if let name = stack.string(at: -1) {
                        names.insert(name)
                        if kinds[name] == nil { kinds[name] = .string }
                    }
                    kvm_lua_pop(L, 1)
                }
            }
        }
        kvm_lua_pop(L, 1)
        for field in ["__methods", "__index"] {
            if stack.rawField(metatable, field) == .table {
                collectKeys(of: -1, on: L, into: &names, kinds: &kinds, depth: depth + 1)
            }
            kvm_lua_pop(L, 1)
        }
        kvm_lua_pop(L, 1)
    }

    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= UInt8(ascii: "a") && first | 0x20 <= UInt8(ascii: "z"))
        else { return false }
        return name.utf8.allSatisfy { c in
            c == UInt8(ascii: "_") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z"))
        }
    }

    /// readline's format: the common prefix first, then the matches, then NULL (malloc'd;
    /// readline frees them).
    static func readlineMatches(_ matches: [String], for word: String) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        guard !matches.isEmpty else { return nil }
        var common = matches[0]
        for match in matches.dropFirst() {
            common = String(zip(common, match).prefix(while: { $0 == $1 }).map { $0.0 })
        }
        let entries = matches.count == 1 ? matches : [common] + matches
        guard let array = malloc((entries.count + 1) * MemoryLayout<UnsafeMutablePointer<CChar>?>.stride) else { return nil }
        let pointers = array.bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: entries.count + 1)
        for (i, entry) in entries.enumerated() { pointers[i] = strdup(entry) }
        pointers[entries.count] = nil
        return pointers
    }
}

/// readline's completion entry point (rl_attempted_completion_function).
func attemptCompletion(
    _ text: UnsafePointer<CChar>?, _ start: Int32, _ end: Int32
) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    kvm_rl_completion_settings()
    guard let text, let runtime = Completion.runtime else { return nil }
    let word = String(cString: text)
    return Completion.readlineMatches(Completion.candidates(for: word, runtime: runtime), for: word)
}
