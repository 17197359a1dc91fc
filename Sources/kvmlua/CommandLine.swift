/// The command line, read by hand the way lua.c reads it (options only before the script,
/// the same errors and usage text), plus kvmlua's own long options, which are collected
/// before anything runs so their order does not matter.
struct CommandLineOptions {
    enum Action {
        /// `-e stat`
        case execute(String)
        /// `-l mod` / `-l g=mod`
        case require(String)
        /// `-W`
        case warningsOn
    }

    /// argv[0] as typed: the name errors are prefixed with. When argv[0] is empty, "lua",
    /// as lua.c's LUA_PROGNAME (contract §1.2), so messages stay identical to lua's.
    var programName = "lua"
    /// -e, -l and -W in command-line order.
    var actions: [Action] = []
    var interactive = false  // -i
    var version = false  // -v (also set by -i)
    var hasExecute = false  // some -e
    var ignoreEnvironment = false  // -E
    /// Index in argv of the script, 0 when there is none.
    var scriptIndex = 0
    /// Whether the script is stdin (`-` not preceded by `--`).
    var scriptIsStdin = false
    // Long options.
    var help = false
    var showVersion = false
    /// `--device TARGET`, in order: one connects and binds the global `dev`; several (or a
    /// profile glob) make a fleet.
    var devices: [String] = []
    /// The one device when there is exactly one `--device`.
    var device: String? { devices.count == 1 ? devices[0] : nil }
    /// `--group NAME`: the members of a group of the config file (a fleet).
    var groups: [String] = []
    /// `--sim[=generation]`: start the simulator and bind `dev`.
    var simulator: String?
    /// `--sim N`: N simulated devices `sim-1` … `sim-N` (a fleet).
    var simulatorCount: Int?
    /// `--limit N`: fleet runs at once.
    var limit: Int?
    /// `--output-dir DIR`, `--junit FILE`, `--json FILE`: where a fleet's results go.
    var outputDir: String?
    var junit: String?
    var json: String?
    var insecure = false
    var sandbox = false
    /// `--play FILE`: play a macro on the device and exit.
    var play: String?
    /// A hidden option asking for a text made from these tables (man page, completion, profiles).
    var generate: Generated?

    enum Generated {
        case manPage, bashCompletion, profileNames, groupNames
    }
    /// `--layout NAME`: the keyboard layout `dev:type` uses when nothing else names one.
    var layout: String?

    /// The bad argument, when the command line is invalid.
    var badOption: String?

    /// kvmlua's long options: name, argument placeholder (nil when it takes none), help line.
    /// The one definition --help, the man page (`--man`) and the bash completion are made from:
    /// adding an option is one line here (plus its case in `parseLong`).
    static let longOptions: [(name: String, argument: String?, help: String)] = [
        ("device", "TARGET", "connect to a NanoKVM (URL, host or profile) as the global 'dev'; repeat it or give a profile glob ('lab-*') to run on each"),
        ("group", "NAME", "run on every device of a group of the config file"),
        ("sim", nil, "start the built-in simulated NanoKVM as 'dev' (--sim=legacy: 2.0.x firmware; --sim N: N devices)"),
        ("insecure", nil, "do not verify the device's TLS certificate"),
        ("play", "FILE", "play a macro (.kvm-macro, PiKVM .json, DuckyScript .txt) on 'dev' and exit"),
        ("limit", "N", "with several devices: at most N runs at once (default 32)"),
        ("output-dir", "DIR", "with several devices: write each device's output to DIR/NAME.log, print progress"),
        ("junit", "FILE", "write the runs' results as JUnit XML (one testcase per device)"),
        ("json", "FILE", "write the runs' results as JSON (one object per device)"),
        ("layout", "NAME", "keyboard layout dev:type uses when none is named (us, gb, ch(fr)...; kvm.layouts())"),
        ("sandbox", nil, "no os.execute, io.popen, C modules, or writes outside the working directory"),
        ("help", nil, "show this help and exit"),
        ("version", nil, "show kvmlua's version and exit"),
    ]

    /// Options for the tools around kvmlua, not listed by --help: `scripts/install` writes the
    /// man page and the completion with them, and the completion asks for profile names.
    static let hiddenOptions: [(name: String, argument: String?, help: String)] = [
        ("man", nil, "print the manual page (roff) and exit"),
        ("bash-completion", nil, "print the bash completion script and exit"),
        ("list-profiles", nil, "print the profile names of the config file, one a line, and exit"),
        ("list-groups", nil, "print the group names of the config file, one a line, and exit"),
    ]

    /// lua.c's own options as its usage text lists them (flag, argument, help line); the parser
    /// above reads them by hand, these rows document them in --help and the man page.
    static let luaOptions: [(flag: String, argument: String?, help: String)] = [
        ("-e", "stat", "execute string 'stat'"),
        ("-i", nil, "enter interactive mode after executing 'script'"),
        ("-l", "mod", "require library 'mod' into global 'mod'"),
        ("-l", "g=mod", "require library 'mod' into global 'g'"),
        ("-v", nil, "show version information"),
        ("-E", nil, "ignore environment variables"),
        ("-W", nil, "turn warnings on"),
        ("--", nil, "stop handling options"),
        ("-", nil, "stop handling options and execute stdin"),
    ]

    /// Parses `arguments` (argv including argv[0]).
    static func parse(_ arguments: [String]) -> CommandLineOptions {
        var options = CommandLineOptions()
        if let first = arguments.first, !first.isEmpty { options.programName = first }
        var i = 1
        while i < arguments.count {
            let argument = arguments[i]
            options.scriptIndex = i
            let characters = Array(argument.utf8)
            guard characters.first == UInt8(ascii: "-") else { return options }  // the script
            if characters.count == 1 {  // "-": stdin is the script
                options.scriptIsStdin = true
                return options
            }
            switch characters[1] {
            case UInt8(ascii: "-"):
                if characters.count == 2 {  // "--": the next argument is the script, whatever it is
                    options.scriptIndex = i + 1 < arguments.count ? i + 1 : 0
                    return options
                }
                guard options.parseLong(argument, arguments, &i) else { return options }
            case UInt8(ascii: "E"), UInt8(ascii: "W"), UInt8(ascii: "i"), UInt8(ascii: "v"):
                guard characters.count == 2 else {
                    options.badOption = argument
                    return options
                }
                switch characters[1] {
                case UInt8(ascii: "E"): options.ignoreEnvironment = true
                case UInt8(ascii: "W"): options.actions.append(.warningsOn)
                case UInt8(ascii: "i"):
                    options.interactive = true
                    options.version = true
                default: options.version = true
                }
            case UInt8(ascii: "e"), UInt8(ascii: "l"):
                var value = String(decoding: characters[2...], as: UTF8.self)
                if characters.count == 2 {
                    i += 1
                    guard i < arguments.count, !arguments[i].hasPrefix("-") else {
                        options.badOption = argument
                        return options
                    }
                    value = arguments[i]
                }
                if characters[1] == UInt8(ascii: "e") {
                    options.actions.append(.execute(value))
                    options.hasExecute = true
                } else {
                    options.actions.append(.require(value))
                }
            default:
                options.badOption = argument
                return options
            }
            i += 1
        }
        options.scriptIndex = 0
        return options
    }

    /// Reads one `--name[=value]` option; false (with `badOption` set) when it is not ours.
    private mutating func parseLong(_ argument: String, _ arguments: [String], _ i: inout Int) -> Bool {
        let body = argument.dropFirst(2)
        let name = body.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
        guard let option = (Self.longOptions + Self.hiddenOptions).first(where: { $0.name == name }) else {
            badOption = argument
            return false
        }
        var value: String?
        if let equals = body.firstIndex(of: "=") {
            // --sim=legacy: the one option whose argument is optional.
            guard option.argument != nil || option.name == "sim" else {
                badOption = argument
                return false
            }
            value = String(body[body.index(after: equals)...])
        } else if option.argument != nil {
            i += 1
            guard i < arguments.count else {
                badOption = argument
                return false
            }
            value = arguments[i]
        }
        switch option.name {
        case "help": help = true
        case "version": showVersion = true
        case "device": devices.append(value ?? "")
        case "group": groups.append(value ?? "")
        case "sim":
            guard value == nil || value == "current" || value == "legacy" else {
                badOption = argument
                return false
            }
            simulator = value ?? "current"
            // `--sim N`: a count right after it (a script is never named by digits alone).
            if i + 1 < arguments.count, let count = Int(arguments[i + 1]), arguments[i + 1].allSatisfy(\.isNumber) {
                guard (1...1000).contains(count) else {
                    badOption = "--sim \(arguments[i + 1])"
                    return false
                }
                simulatorCount = count
                i += 1
            }
        case "limit":
            guard let count = value.flatMap({ Int($0) }), count >= 1 else {
                badOption = "--limit \(value ?? "")"
                return false
            }
            limit = count
        case "output-dir": outputDir = value
        case "junit": junit = value
        case "json": json = value
        case "insecure": insecure = true
        case "play": play = value
        case "layout": layout = value
        case "sandbox": sandbox = true
        case "man": generate = .manPage
        case "bash-completion": generate = .bashCompletion
        case "list-profiles": generate = .profileNames
        case "list-groups": generate = .groupNames
        default: break
        }
        return true
    }

    /// lua.c's usage text followed by kvmlua's long options.
    static func usage(programName: String) -> String {
        var text = "usage: \(programName) [options] [script [args]]\nAvailable options are:\n"
        for option in luaOptions {
            let left = option.flag + (option.argument.map { " \($0)" } ?? "")
            text += "  " + left + String(repeating: " ", count: max(2, 10 - left.count)) + option.help + "\n"
        }
        let width = longOptions.map { 2 + $0.name.count + ($0.argument.map { $0.count + 1 } ?? 0) }.max() ?? 0
        for option in longOptions {
            let left = "--\(option.name)" + (option.argument.map { " \($0)" } ?? "")
            text += "  " + left + String(repeating: " ", count: max(1, width - left.count + 2)) + option.help + "\n"
        }
        return text
    }

    /// The first line of the error for a bad option.
    static func badOptionMessage(_ option: String) -> String {
        if option.hasPrefix("--limit ") { return "'--limit' needs a whole number >= 1, got '\(option.dropFirst(8))'" }
        if option.hasPrefix("--sim ") { return "'--sim N' needs 1..1000 devices, got '\(option.dropFirst(6))'" }
        let characters = Array(option.utf8)
        let needsArgument =
            (characters.count >= 2 && (characters[1] == UInt8(ascii: "e") || characters[1] == UInt8(ascii: "l")))
            || (characters.count > 2 && characters[1] == UInt8(ascii: "-")
                && longOptions.contains { "--\($0.name)" == option && $0.argument != nil })
        return needsArgument ? "'\(option)' needs argument" : "unrecognized option '\(option)'"
    }
}
