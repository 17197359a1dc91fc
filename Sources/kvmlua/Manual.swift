import KVMLua
import LuaBridge

/// kvmlua(1), printed by the hidden `kvmlua --man` (scripts/install writes it to
/// share/man/man1/kvmlua.1). The options come from the tables --help prints and the Lua API
/// summary from the function specs, so the page cannot drift from the program; what the program
/// reads from its environment and the files it keeps are listed here, once (a test checks that
/// every variable the sources read appears in the page).
enum Manual {
    /// Environment variables: name, what kvmlua does with it.
    static let environment: [(name: String, meaning: String)] = [
        ("LUA_INIT_5_4, LUA_INIT", "as for lua: Lua code, or @FILE, run before the command line's chunks (ignored with -E)"),
        ("LUA_PATH_5_4, LUA_PATH, LUA_CPATH_5_4, LUA_CPATH", "as for lua: where require looks for Lua and C modules (ignored with -E)"),
        ("KVMLUA_DEVICE", "the device kvm.connect() and --play use when no target is given (URL, host or profile name)"),
        ("NANOKVM_PASSWORD", "the password when neither the script nor the profile gives one (else a no-echo prompt on the terminal)"),
        ("KVMLUA_CONFIG", "the config file, instead of $XDG_CONFIG_HOME/kvmlua/config.lua"),
        ("XDG_CONFIG_HOME", "base of the config file (default ~/.config)"),
        ("XDG_CACHE_HOME", "base of the token cache (default ~/.cache)"),
        ("XDG_STATE_HOME", "base of the REPL history and the known hosts (default ~/.local/state)"),
        ("KVMLUA_HISTORY", "the REPL history file, instead of $XDG_STATE_HOME/kvmlua/history"),
        ("HOME", "where the defaults above live when the XDG variables are not set"),
        ("NO_COLOR", "when set and not empty, no colour in the REPL (TERM=dumb too)"),
        ("TERM", "dumb: no colour"),
        ("PATH", "where ffmpeg is found (recordings to .mp4); password_cmd runs with /bin/sh"),
        ("TMPDIR", "where recordings to .mp4 are written before ffmpeg transcodes them (default /tmp)"),
        ("TESSDATA_PREFIX", "where dev:ocr and the text waits find Tesseract's language data (default Debian's /usr/share/tesseract-ocr/5/tessdata)"),
        ("OMP_THREAD_LIMIT", "Tesseract's own threads; kvmlua sets 1 unless it is set (OCR runs on kvmlua's worker threads)"),
        ("KVMLUA_NO_XKBCOMMON", "when set, kvmlua behaves as if libxkbcommon were not installed: only the built-in layouts us, uk, de, fr"),
    ]

    /// Files: path, what it holds.
    static let files: [(path: String, meaning: String)] = [
        ("$XDG_CONFIG_HOME/kvmlua/config.lua (~/.config/kvmlua/config.lua, or $KVMLUA_CONFIG)",
         "device profiles and groups: a Lua file returning { profiles = { name = { url = ..., user = ..., password_cmd = ..., fingerprint = ... } }, groups = { rack = { \"lab-*\", \"http://10.0.0.9\" } } }; refused when it holds a password and is readable by group or others (chmod 600)"),
        ("$XDG_CACHE_HOME/kvmlua/tokens (~/.cache/kvmlua/tokens)",
         "session tokens of earlier runs, reused until they expire (mode 0600)"),
        ("$XDG_STATE_HOME/kvmlua/known_hosts (~/.local/state/kvmlua/known_hosts)",
         "certificate fingerprints of devices seen before (mode 0600)"),
        ("$XDG_STATE_HOME/kvmlua/history (~/.local/state/kvmlua/history, or $KVMLUA_HISTORY)",
         "the REPL history (mode 0600); lines that look like they hold a password, a token or a secret are not written"),
    ]

    static let exitStatus: [(status: String, meaning: String)] = [
        ("0", "the script, the -e chunks, the macro or the REPL session ended normally"),
        ("1", "a bad option; an error raised by a chunk or the script (also one read from a pipe, where lua exits 0); a failed --device or --sim connection; a failed --play; a task error nobody waited for"),
        ("n", "the script called os.exit(n) (os.exit(true) is 0, os.exit(false) is 1); with several devices os.exit ends that device's run only"),
        ("0 or 1 (several devices)", "0 only when the run on every device succeeded, else 1"),
    ]

    static let examples: [(command: String, meaning: String)] = [
        ("kvmlua --sim", "a REPL with dev bound to the built-in simulated NanoKVM"),
        ("kvmlua --device 192.168.0.10", "a REPL on a real device (asks for the password or reads $NANOKVM_PASSWORD)"),
        ("kvmlua --device lab -e 'dev:screenshot(\"screen.jpg\")'", "save the screen of the device of profile lab"),
        ("kvmlua --device lab --play login.kvm-macro", "play a recorded macro and exit"),
        ("kvmlua --sandbox --device lab shared.lua arg1", "run a script someone else wrote, without os.execute, io.popen, C modules or writes outside the working directory"),
        ("echo 'print(dev:is_on())' | kvmlua --sim=legacy -", "a chunk from a pipe against a simulated 2.0.x firmware"),
        ("kvmlua --group rack --junit results.xml check.lua", "run check.lua once on every device of the group rack, output prefixed with each device's name, a summary, and a JUnit file for CI (docs/fleet.md)"),
        ("kvmlua --sim 5 -e 'dev:screenshot(\"shots/{device}.png\")'", "five simulated devices, one screenshot file each"),
    ]

    /// The page in roff (man(7) macros). `runtime` has the kvm module installed: its specs
    /// give the Lua API summary.
    static func page(runtime: LuaRuntime) -> String {
        var page = """
            .TH KVMLUA 1 "" "kvmlua \(KVMModule.version)" "User Commands"
            .SH NAME
            kvmlua \\- Lua 5.4 with a module for driving Sipeed NanoKVM devices

            """
        page += ".SH SYNOPSIS\n.B kvmlua\n.RI [ options ]\n.RI [ script\n.RI [ args ]]\n"
        page += ".SH DESCRIPTION\n"
        page += paragraph(
            "kvmlua behaves like the lua command (the same options, arg table, LUA_INIT, exit codes and tracebacks) with a kvm module for the whole NanoKVM device API (power and LEDs, keyboard and mouse, screenshots and waits on the screen, macros, storage, virtual USB devices, network and system settings), tasks that run concurrently, and a built-in simulated NanoKVM for trying everything without hardware.")
        page += paragraph(
            "Without a script or -e it starts a REPL (when standard input is a terminal): persistent history, completion of fields and methods, tables pretty-printed, _ holding the last result, and Ctrl-C cancelling the line or interrupting the running call, including waits on the device. With --device or --sim the global dev is a connected kvm.Device.")
        page += paragraph("The whole Lua API is documented in docs/lua-api.md (installed as share/doc/kvmlua/lua-api.md) and by help(f) in the REPL; the functions of the kvm module are summarised under LUA API below.")

        page += ".SH OPTIONS\n"
        page += paragraph("Options come before the script, as for lua; the long options may come in any order.")
        for option in CommandLineOptions.luaOptions {
            page += ".TP\n" + tag(option.flag, option.argument) + "\n\(escape(option.help))\n"
        }
        for option in CommandLineOptions.longOptions {
            page += ".TP\n" + tag("--" + option.name, option.argument) + "\n\(escape(option.help))\n"
        }

        page += ".SH ENVIRONMENT\n"
        for variable in environment {
            page += ".TP\n.B \(quoted(variable.name))\n\(escape(variable.meaning))\n"
        }
        page += ".SH FILES\n"
        for file in files {
            page += ".TP\n.I \(quoted(file.path))\n\(escape(file.meaning))\n"
        }
        page += ".SH EXIT STATUS\n"
        for status in exitStatus {
            page += ".TP\n.B \(quoted(status.status))\n\(escape(status.meaning))\n"
        }
        page += ".SH EXAMPLES\n"
        for example in examples {
            page += ".TP\n.B \(quoted(example.command))\n\(escape(example.meaning))\n"
        }

        page += ".SH LUA API\n"
        page += paragraph("The functions of the kvm module (dev: methods and the rest: docs/lua-api.md, help()):")
        let functions = KVMModule.documentedFunctions(in: runtime)
            .filter { $0.name.hasPrefix("kvm.") }
            .sorted { $0.name < $1.name }
        for spec in functions {
            var heading = spec.signature
            if !spec.returns.isEmpty { heading += " \u{2192} " + spec.returns }
            page += ".TP\n.B \(quoted(heading))\n\(escape(firstSentence(of: spec.documentation)))\n"
        }
        page += ".SH SEE ALSO\n.BR lua (1),\n.BR nanokvm\\-sim (1)\n"
        return page
    }

    /// An option's tag line: the flag bold, its argument italic.
    private static func tag(_ flag: String, _ argument: String?) -> String {
        guard let argument else { return ".B \(quoted(flag))" }
        return ".BI \(quoted(flag + " ")) \(quoted(argument))"
    }

    /// A macro argument: escaped and in double quotes (so spaces stay inside it).
    private static func quoted(_ text: String) -> String {
        "\"" + escape(text) + "\""
    }

    private static func paragraph(_ text: String) -> String {
        ".PP\n" + escape(text) + "\n"
    }

    /// The first sentence of a documentation text, on one line.
    static func firstSentence(of documentation: String) -> String {
        let flat = documentation.split(whereSeparator: { $0 == "\n" })
            .map { $0.drop(while: { $0 == " " }) }
            .joined(separator: " ")
        if let end = flat.range(of: ". ") { return String(flat[..<end.lowerBound]) + "." }
        return flat
    }

    /// Text safe for a roff line: backslashes and hyphens escaped, no line starting a request,
    /// Markdown backticks dropped.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\e"
            case "-": out += "\\-"
            case "`": break
            case "\"": out += "\\(dq"
            case "\n": out += " "
            default: out.append(character)
            }
        }
        if out.hasPrefix(".") || out.hasPrefix("'") { out = "\\&" + out }
        return out
    }
}
