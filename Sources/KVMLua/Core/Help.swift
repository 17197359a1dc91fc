import CLua
import LuaBridge

#if canImport(Glibc)
    import Glibc
#endif

/// The global `help`: documentation of kvm functions, from the same specs that register
/// them (one source of truth).
public enum HelpBindings {
    public static func install(in runtime: LuaRuntime) throws(LuaRuntimeError) {
        runtime.push(function: spec)
        runtime.setGlobal("help")
    }

    static var spec: LuaFunctionSpec {
        LuaFunctionSpec(
            "help", signature: "help([x])",
            """
            Prints documentation. `help()` gives an overview, `help(kvm)` lists the module's
            functions, `help(kvm.sleep)` or `help("kvm.sleep")` shows one function, and for an
            object such as a task, `help(task)` lists its methods.
            """,
            body: { call in
                let text = helpText(call)
                write(text)
                return .none
            })
    }

    static func write(_ text: String) {
        var output = text.hasSuffix("\n") ? text : text + "\n"
        output.withUTF8 { buffer in _ = fwrite(buffer.baseAddress, 1, buffer.count, kvm_stdout()) }
        fflush(kvm_stdout())
    }

    static func helpText(_ call: LuaCall) -> String {
        let runtime = call.runtime
        let L = call.L
        if call.isNoneOrNil(1) { return overview(runtime) }
        switch call.type(1) {
        case .function:
            return runtime.documentation(ofFunctionAt: 1) ?? "No documentation for this function."
        case .string:
            let name = call.stack.string(at: 1) ?? ""
            let candidates = [name, "kvm." + name]
            if let spec = runtime.functionSpecs.first(where: { candidates.contains($0.name) && !$0.documentation.isEmpty }) {
                return spec.helpText
            }
            let related = runtime.functionSpecs.filter { !$0.documentation.isEmpty && $0.name.hasPrefix(name) }
            if !related.isEmpty { return listing(related.map { $0 }) }
            return "No documentation for '\(name)'. Try help() for an overview."
        case .table:
            return listing(documentedFunctions(inTableAt: 1, on: L, runtime: runtime))
        case .userdata:
            guard lua_getmetatable(L, 1) != 0 else { return "No documentation for this value." }
            defer { kvm_lua_pop(L, 1) }
            var specs: [LuaFunctionSpec] = []
            for field in ["__methods", "__index"] where specs.isEmpty {
                if LuaStack(L).rawField(-1, field) == .table {
                    specs = documentedFunctions(inTableAt: -1, on: L, runtime: runtime)
                }
                kvm_lua_pop(L, 1)
            }
            return specs.isEmpty ? "No documentation for this value." : listing(specs)
        default:
            return "No documentation for a \(call.typeName(at: 1)) value."
        }
    }

    /// Specs of the documented functions stored (raw) in the table at `index`.
    static func documentedFunctions(inTableAt index: Int32, on L: OpaquePointer, runtime: LuaRuntime) -> [LuaFunctionSpec] {
        let table = lua_absindex(L, index)
        var texts: [String] = []
        lua_pushnil(L)
        while lua_next(L, table) != 0 {
            if lua_type(L, -1) == LUA_TFUNCTION, let text = runtime.documentation(ofFunctionAt: -1) {
                texts.append(text)
            }
            kvm_lua_pop(L, 1)
        }
        let specs = runtime.functionSpecs.filter { !$0.documentation.isEmpty && texts.contains($0.helpText) }
        return specs.sorted { $0.name < $1.name }
    }

    static func listing(_ specs: [LuaFunctionSpec]) -> String {
        guard !specs.isEmpty else { return "No documented functions here." }
        let width = min(40, specs.map { $0.signature.count }.max() ?? 0)
        return specs.map { spec in
            let summary = firstSentence(spec.documentation)
            let padding = String(repeating: " ", count: max(1, width - spec.signature.count + 2))
            return spec.signature + padding + summary
        }.joined(separator: "\n")
    }

    static func firstSentence(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        var previous: Character = " "
        for index in flat.indices {
            let character = flat[index]
            if character == " ", previous == "." { return String(flat[..<index]) }
            previous = character
        }
        return flat
    }

    static func overview(_ runtime: LuaRuntime) -> String {
        let functions = runtime.functionSpecs.filter { !$0.documentation.isEmpty && $0.name.hasPrefix("kvm.") }
        return """
            kvmlua \(KVMModule.version): Lua 5.4 with the `kvm` module for Sipeed NanoKVM devices.
            help(kvm) lists the module, help(kvm.sleep) or help("kvm.sleep") shows one function.

            """ + listing(functions.sorted { $0.name < $1.name })
    }
}
