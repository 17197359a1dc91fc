import Foundation
import KVMLua
import LuaBridge
import Testing

/// docs/lua-api.md is generated from the function specs; this fails when they drift apart.
/// `UPDATE_DOCS=1` (scripts/gen-docs) rewrites the file instead.
@Suite(.timeLimit(.minutes(1))) struct ReferenceTests {
    static let path: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("docs/lua-api.md").path
    }()

    @Test func referenceMatchesTheCode() async throws {
        let generated = try await onLuaThread { () -> String in
            // The state must stay open while its (partly deferred) specs are read.
            let state = try KVMState()
            return withExtendedLifetime(state) { Reference.markdown(for: state.runtime) }
        }
        if ProcessInfo.processInfo.environment["UPDATE_DOCS"] == "1" {
            try generated.write(toFile: Self.path, atomically: true, encoding: .utf8)
        }
        let onDisk = (try? String(contentsOfFile: Self.path, encoding: .utf8)) ?? ""
        #expect(onDisk == generated, "docs/lua-api.md is out of date: run scripts/gen-docs")
        for name in ["kvm.connect(target [, opts])", "dev:power([d])", "dev.storage:mount(path [, {cdrom=bool}])", "task:wait()"] {
            #expect(generated.contains("`\(name)`"), "\(name) is documented")
        }
    }

    /// The option names a function checks are the ones its text describes, and the reverse.
    @Test func documentedOptionsAreTheCheckedOnes() async throws {
        let problems = try await onLuaThread { () -> [String] in
            let state = try KVMState()
            return withExtendedLifetime(state) {
                state.runtime.functionSpecs.flatMap { spec -> [String] in
                    let text = spec.documentation
                    var found: [String] = []
                    for option in spec.options where !(text.contains("`\(option)`") || text.contains("opts.\(option)") || text.contains("`\(option) ") || spec.signature.contains("\(option)=")) {
                        found.append("\(spec.name): option '\(option)' is not described")
                    }
                    // Every `opts.NAME` the text mentions must be accepted.
                    var rest = Substring(text)
                    while let range = rest.range(of: "opts.") {
                        let name = rest[range.upperBound...].prefix { $0.isLetter || $0 == "_" }
                        if !name.isEmpty, !spec.options.contains(String(name)) { found.append("\(spec.name): 'opts.\(name)' is not accepted") }
                        rest = rest[range.upperBound...]
                    }
                    return found
                }
            }
        }
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func optionNamesSuggestTheClosest() {
        #expect(OptionNames.closest(to: "dealy", in: ["delay", "layout", "secret"]) == "delay")
        #expect(OptionNames.closest(to: "secnds", in: ["seconds", "area", "threshold", "timeout"]) == "seconds")
        #expect(OptionNames.closest(to: "TimeOut", in: ["timeout"]) == "timeout")
        #expect(OptionNames.closest(to: "zzzzzz", in: ["delay", "layout"]) == nil)
        #expect(OptionNames.closest(to: "x", in: ["y"]) == "y")
        #expect(OptionNames.unknownMessage("'dealy'", known: ["delay"]) == "unknown option 'dealy' (did you mean 'delay'?)")
    }

    @Test func everyRegisteredFunctionIsDocumented() async throws {
        let undocumented = try await onLuaThread { () -> [String] in
            let state = try KVMState()
            return state.runtime.functionSpecs.filter { $0.documentation.isEmpty && !$0.name.contains("__") && !$0.name.hasPrefix("kvm._") }
                .map(\.name)
        }
        #expect(undocumented.isEmpty, "undocumented: \(undocumented)")
    }
}
