// The man page, the bash completion script and the profile listing that scripts/install and
// the completion use (hidden options --man, --bash-completion, --list-profiles): made from the
// option table of --help, so a new option shows up in all of them.

import Foundation
import Testing

private let sections = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES"]

/// The long options `--help` lists (`  --name ARG   help`).
private func helpOptions(_ help: String) -> [String] {
    help.split(separator: "\n").compactMap { line in
        guard line.hasPrefix("  --"), let name = line.dropFirst(2).split(separator: " ").first else { return nil }
        return String(name)
    }
}

/// The repository root, from this file's path (Tests/kvmluaTests/ManPageTests.swift).
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

/// Environment variable names the sources read: `getenv("X")` and `environment("X")`.
private func environmentNamesInSources() throws -> Set<String> {
    var names = Set<String>()
    let sources = repositoryRoot + "/Sources"
    guard let files = FileManager.default.enumerator(atPath: sources) else { return names }
    let pattern = try NSRegularExpression(pattern: #"(?:getenv|environment)\("([A-Z_][A-Z0-9_]*)"\)"#)
    for case let file as String in files where file.hasSuffix(".swift") {
        // The simulator is another program (nanokvm-sim has its own --help).
        if file.hasPrefix("NanoKVMSimulator/") || file.hasPrefix("nanokvm-sim/") { continue }
        let text = try String(contentsOfFile: sources + "/" + file, encoding: .utf8)
        for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            if let range = Range(match.range(at: 1), in: text) { names.insert(String(text[range])) }
        }
    }
    return names
}

@Suite("man page, bash completion script and profile listing", .tags(.kvmluaAddition), .timeLimit(.minutes(1)))
struct ManPageTests {
    @Test("--man: every section, every option of --help, every lua option, the kvm functions")
    func manPage() async throws {
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let man = try await runner.run(["--man"])
        #expect(man.status == .exited(0) && man.stderr.isEmpty, "\(man)")
        let page = man.stdout
        #expect(page.hasPrefix(".TH KVMLUA 1 "))
        for section in sections {
            #expect(page.contains("\n.SH \(section)\n"), "section \(section) missing")
        }
        let help = try await runner.run(["--help"])
        let options = helpOptions(help.stdout)
        #expect(options.contains("--device") && options.contains("--play"), "\(help)")
        for option in options {
            let roff = option.replacingOccurrences(of: "-", with: "\\-")
            #expect(page.contains(".B \"\(roff)\"") || page.contains(".BI \"\(roff) \""), "\(option) is not in the man page")
        }
        for flag in ["-e", "-i", "-l", "-v", "-E", "-W"] {
            #expect(page.contains("\"\\" + flag), "\(flag) is not in the man page")
        }
        #expect(page.contains("kvm.connect(") && page.contains("kvm.sim("), "the kvm functions are summarised")
        // Nothing that roff would read as a request, and no raw backslash sequences from the texts.
        for line in page.split(separator: "\n") where !line.hasPrefix(".") {
            #expect(!line.hasPrefix("'"), "line read as a request: \(line)")
        }
    }

    @Test("--man lists every environment variable the sources read")
    func manEnvironment() async throws {
        let box = try Sandbox()
        let page = try await Runner(binary: .underTest, box: box).run(["--man"]).stdout
        guard let start = page.range(of: "\n.SH ENVIRONMENT\n"), let end = page.range(of: "\n.SH FILES\n") else {
            Issue.record("no ENVIRONMENT section")
            return
        }
        let environment = page[start.upperBound..<end.lowerBound].replacingOccurrences(of: "\\_", with: "_")
        let names = try environmentNamesInSources()
        #expect(names.contains("KVMLUA_CONFIG") && names.contains("NANOKVM_PASSWORD"), "scan found \(names.sorted())")
        for name in names.sorted() {
            #expect(environment.contains(name), "\(name) is read by the sources but not in the man page's ENVIRONMENT")
        }
    }

    @Test("the hidden options are not in --help; --bash-completion offers every option of --help")
    func hiddenOptions() async throws {
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let help = try await runner.run(["--help"]).stdout
        for hidden in ["--man", "--bash-completion", "--list-profiles"] {
            #expect(!help.contains(hidden), "\(hidden) is listed by --help")
        }
        let completion = try await runner.run(["--bash-completion"])
        #expect(completion.status == .exited(0), "\(completion)")
        #expect(completion.stdout.contains("complete -o default -F _kvmlua kvmlua"))
        guard let words = completion.stdout.split(separator: "\n").first(where: { $0.contains("compgen -W \"-e ") }) else {
            Issue.record("no option list in the completion: \(completion.stdout)")
            return
        }
        for option in helpOptions(help) {
            #expect(words.contains(" \(option) ") || words.contains(" \(option)\""), "\(option) not offered: \(words)")
        }
    }

    @Test("--list-profiles: the names of the config file, sorted; none without a file; a broken file is one line on stderr")
    func listProfiles() async throws {
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let none = try await runner.run(["--list-profiles"])
        #expect(none == Outcome(stdout: "", stderr: "", status: .exited(0)))

        try box.write(box.home + "/.config/kvmlua/config.lua", """
            return { profiles = { ["lab-b"] = { url = "10.0.0.6" }, lab = { url = "https://10.0.0.5", password_cmd = "false" } } }
            """)
        let listed = try await runner.run(["--list-profiles"])
        #expect(listed == Outcome(stdout: "lab\nlab-b\n", stderr: "", status: .exited(0)))

        // $KVMLUA_CONFIG wins over the XDG path.
        try box.write("other.lua", "return { profiles = { desk = { url = '10.0.0.7' } } }")
        let other = try await runner.run(["--list-profiles"], env: ["KVMLUA_CONFIG": box.work + "/other.lua"])
        #expect(other.stdout == "desk\n", "\(other)")

        try box.write("broken.lua", "return { profiles = ")
        let broken = try await runner.run(["--list-profiles"], env: ["KVMLUA_CONFIG": box.work + "/broken.lua"])
        #expect(broken.stdout == "" && broken.status == .exited(1), "\(broken)")
        #expect(broken.stderr.hasPrefix("lua: ") && broken.stderr.contains("config file"), "\(broken)")
        #expect(broken.stderr.split(separator: "\n").count == 1, "\(broken)")
    }
}
