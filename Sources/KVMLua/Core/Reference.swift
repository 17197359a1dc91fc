import LuaBridge

/// docs/lua-api.md, generated from the specs that register the functions (one source of
/// truth: a test fails when the file and the code drift apart).
public enum Reference {
    /// Groups in the order the reference lists them: title and the name prefix.
    static let groups: [(title: String, prefix: String, intro: String)] = [
        ("Module", "kvm.", "`kvm` is a global in every state; `require \"kvm\"` returns the same table. Fields: `kvm.version` (kvmlua's version), `kvm.Error` (the metatable of every error), `kvm.json.null`."),
        ("Tasks", "task:", "What `kvm.spawn` returns. Field: `task.id`."),
        ("Frames", "f:", "What `dev:screenshot` returns. Fields: `f.width`, `f.height` (pixels, from the JPEG header), `f.time` (monotonic seconds when received), `f.size` (bytes)."),
        ("Device", "dev:", "What `kvm.connect` and `kvm.sim` return. Fields: `dev.url`, `dev.user`, `dev.generation` (\"legacy\"/\"current\"), `dev.version`."),
        ("Storage: dev.storage", "dev.storage:", ""),
        ("Virtual USB devices: dev.virtual", "dev.virtual:", ""),
        ("HID: dev.hid", "dev.hid:", ""),
        ("Video stream: dev.stream", "dev.stream:", ""),
        ("Network: dev.network", "dev.network:", ""),
        ("System: dev.system", "dev.system:", ""),
        ("Scripts on the device: dev.scripts", "dev.scripts:", ""),
        ("Tailscale: dev.tailscale", "dev.tailscale:", ""),
        ("Accounts: dev.auth", "dev.auth:", ""),
        ("Help", "help", ""),
    ]

    public static func markdown(for runtime: LuaRuntime) -> String {
        let specs = runtime.functionSpecs.filter { !$0.documentation.isEmpty }
        var done = Set<String>()
        var text = """
            # kvmlua Lua API reference

            Generated from the definitions that register the functions (`help(f)` in the REPL shows
            the same text). Do not edit by hand: run `scripts/gen-docs`. The contract these follow is
            ../shared/lua-api.md: times are seconds, screen positions fractions of the screen, and every
            failure raises a `kvm.Error` (fields `kind`, `msg`, `code`, `status`, `method`, `path`,
            `device`; `tostring(err)` is one line).

            """
        for group in groups {
            let members = specs.filter { spec in
                !done.contains(spec.name) && belongs(spec.name, to: group.prefix)
            }
            guard !members.isEmpty else { continue }
            text += "\n## \(group.title)\n\n"
            if !group.intro.isEmpty { text += group.intro + "\n\n" }
            for spec in members.sorted(by: { $0.name < $1.name }) {
                done.insert(spec.name)
                text += "### `\(spec.signature)`"
                if !spec.returns.isEmpty { text += " → \(spec.returns)" }
                text += "\n\n" + spec.documentation.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { $0.trimmingLeadingSpaces }.joined(separator: "\n") + "\n\n"
                if let options = spec.optionsLine { text += options + "\n\n" }
            }
        }
        let rest = specs.filter { !done.contains($0.name) }
        if !rest.isEmpty {
            text += "\n## Other\n\n"
            for spec in rest.sorted(by: { $0.name < $1.name }) {
                text += "### `\(spec.signature)`\n\n\(spec.documentation)\n\n"
                if let options = spec.optionsLine { text += options + "\n\n" }
            }
        }
        while text.hasSuffix("\n\n") { text.removeLast() }
        return text
    }

    static func belongs(_ name: String, to prefix: String) -> Bool {
        if prefix == "kvm." { return name.hasPrefix("kvm.") }
        if prefix == "help" { return name == "help" }
        return name.hasPrefix(prefix)
    }
}

extension Substring {
    var trimmingLeadingSpaces: String { String(drop(while: { $0 == " " })) }
}
