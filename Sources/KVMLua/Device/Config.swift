import CLua
import LuaBridge
import NanoKVM
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One entry of `profiles` in the config file.
public struct DeviceProfile: Sendable, Equatable {
    public var name: String
    public var url: String
    public var user: String?
    /// Kept in memory only; never printed (see `kvm.profiles()`).
    public var password: String?
    /// A shell command whose standard output (first line) is the password.
    public var passwordCommand: String?
    public var fingerprint: String?
    public var ca: String?
    public var insecure: Bool?
    public var timeout: Double?
    public var protocolName: String?
    /// The keyboard layout of the device's host (`dev.layout`), an XKB name such as `ch(fr)`.
    public var layout: String? = nil
}

/// `$XDG_CONFIG_HOME/kvmlua/config.lua` (or `$KVMLUA_CONFIG`): a Lua file returning
/// `{ profiles = { name = { url=…, user=…, password=… or password_cmd=…, fingerprint=… } } }`.
/// It is read on first use, in a Lua state of its own.
public enum KVMConfig {
    public static var path: String? {
        if let explicit = environment("KVMLUA_CONFIG") { return explicit }
        if let config = environment("XDG_CONFIG_HOME") { return config + "/kvmlua/config.lua" }
        if let home = environment("HOME") { return home + "/.config/kvmlua/config.lua" }
        return nil
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// What the config file defines: profiles, and groups of them for fleets.
    public struct Contents: Sendable {
        public var profiles: [String: DeviceProfile] = [:]
        /// `groups = { lab = { "lab-a", "lab-*", "http://10.0.0.9" } }`: members are profile
        /// names, profile globs or addresses, in the order written.
        public var groups: [String: [String]] = [:]
    }

    /// The profiles of the config file; none when there is no file. Errors are `usage`
    /// with the file name, and `permission` for a readable file holding a password.
    public static func loadProfiles() throws(NanoKVMError) -> [String: DeviceProfile] {
        try load().profiles
    }

    /// The whole config file (empty when there is none); errors as for `loadProfiles`.
    public static func load() throws(NanoKVMError) -> Contents {
        guard let path else { return Contents() }
        var info = stat()
        guard stat(path, &info) == 0 else { return Contents() }
        let contents = try evaluate(path)
        if contents.profiles.values.contains(where: { $0.password != nil }), info.st_mode & 0o077 != 0 {
            throw NanoKVMError(
                .permission,
                "\(path) holds a password and can be read by group or others; run: chmod 600 \(path)")
        }
        return contents
    }

    private static func evaluate(_ path: String) throws(NanoKVMError) -> Contents {
        let runtime: LuaRuntime
        do { runtime = try LuaRuntime() } catch { throw NanoKVMError(.usage, "cannot read \(path): \(error)") }
        defer { runtime.close() }
        runtime.openStandardLibraries()
        let L = runtime.L
        let stack = LuaStack(L)
        guard luaL_loadfilex(L, path, "t") == LUA_OK, kvm_lua_pcall(L, 0, 1, 0) == LUA_OK else {
            throw NanoKVMError(.usage, "config file: \(runtime.string(at: -1) ?? "cannot load \(path)")")
        }
        func fail(_ message: String) -> NanoKVMError { NanoKVMError(.usage, "\(path): \(message)") }
        guard stack.type(at: -1) == .table else { throw fail("must return a table, e.g. return { profiles = { … } }") }
        var contents = Contents()
        contents.groups = try readGroups(stack, fail: fail)
        let profilesType = stack.rawField(-1, "profiles")
        if profilesType == .nil { return contents }
        guard profilesType == .table else { throw fail("'profiles' must be a table") }
        var result: [String: DeviceProfile] = [:]
        lua_pushnil(L)
        while lua_next(L, -2) != 0 {
            defer { kvm_lua_pop(L, 1) }
            guard stack.type(at: -2) == .string, let name = stack.string(at: -2) else { throw fail("profile names must be strings") }
            guard stack.type(at: -1) == .table else { throw fail("profile '\(name)' must be a table") }
            func string(_ field: String) throws(NanoKVMError) -> String? {
                defer { kvm_lua_pop(L, 1) }
                switch stack.rawField(-1, field) {
                case .nil: return nil
                case .string: return stack.string(at: -1)
                default: throw fail("profile '\(name)': '\(field)' must be a string")
                }
            }
            func boolean(_ field: String) throws(NanoKVMError) -> Bool? {
                defer { kvm_lua_pop(L, 1) }
                switch stack.rawField(-1, field) {
                case .nil: return nil
                case .boolean: return lua_toboolean(L, -1) != 0
                default: throw fail("profile '\(name)': '\(field)' must be a boolean")
                }
            }
            func number(_ field: String) throws(NanoKVMError) -> Double? {
                defer { kvm_lua_pop(L, 1) }
                switch stack.rawField(-1, field) {
                case .nil: return nil
                case .number: return lua_tonumberx(L, -1, nil)
                default: throw fail("profile '\(name)': '\(field)' must be a number")
                }
            }
            let known: Set<String> = ["url", "user", "password", "password_cmd", "fingerprint", "ca", "insecure", "timeout", "protocol", "layout"]
            lua_pushnil(L)
            while lua_next(L, -2) != 0 {
                let key = stack.string(at: -2) ?? "?"
                kvm_lua_pop(L, 1)
                if stack.type(at: -1) != .string || !known.contains(key) {
                    kvm_lua_pop(L, 1)
                    throw fail("profile '\(name)': unknown field '\(key)' (known: \(known.sorted().joined(separator: ", ")))")
                }
            }
            guard let url = try string("url") else { throw fail("profile '\(name)' has no 'url'") }
            let profile = DeviceProfile(
                name: name, url: url, user: try string("user"), password: try string("password"),
                passwordCommand: try string("password_cmd"), fingerprint: try string("fingerprint"), ca: try string("ca"),
                insecure: try boolean("insecure"), timeout: try number("timeout"), protocolName: try string("protocol"),
                layout: try string("layout"))
            if profile.password != nil, profile.passwordCommand != nil {
                throw fail("profile '\(name)': give either 'password' or 'password_cmd', not both")
            }
            result[name] = profile
        }
        contents.profiles = result
        return contents
    }

    /// The `groups` field of the config table on top of the stack.
    private static func readGroups(
        _ stack: LuaStack, fail: (String) -> NanoKVMError
    ) throws(NanoKVMError) -> [String: [String]] {
        let L = stack.L
        defer { kvm_lua_pop(L, 1) }
        let type = stack.rawField(-1, "groups")
        if type == .nil { return [:] }
        guard type == .table else { throw fail("'groups' must be a table, e.g. groups = { lab = { \"lab-a\", \"lab-b\" } }") }
        var groups: [String: [String]] = [:]
        lua_pushnil(L)
        while lua_next(L, -2) != 0 {
            defer { kvm_lua_pop(L, 1) }
            guard stack.type(at: -2) == .string, let name = stack.string(at: -2) else { throw fail("group names must be strings") }
            guard stack.type(at: -1) == .table else { throw fail("group '\(name)' must be a list of profile names or addresses") }
            let count = lua_rawlen(L, -1)
            var members: [String] = []
            for index in 0..<count {
                lua_rawgeti(L, -1, lua_Integer(index + 1))
                defer { kvm_lua_pop(L, 1) }
                guard stack.type(at: -1) == .string, let member = stack.string(at: -1), !member.isEmpty else {
                    throw fail("group '\(name)': member \(index + 1) must be a profile name, a glob or an address")
                }
                members.append(member)
            }
            guard !members.isEmpty else { throw fail("group '\(name)' is empty") }
            groups[name] = members
        }
        return groups
    }
}

/// Where secrets come from when a script does not give them, and where tokens are kept.
public enum Credentials {
    /// Runs `command` with /bin/sh and returns the first line it prints.
    public static func runPasswordCommand(_ command: String, profile: String) throws(NanoKVMError) -> String {
        guard let pipe = popen(command, "r") else {
            throw NanoKVMError(.auth, "cannot run password_cmd of profile '\(profile)'")
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, pipe)
            if count <= 0 { break }
            output += buffer[0..<count]
        }
        let status = pclose(pipe)
        guard status == 0 else {
            throw NanoKVMError(.auth, "password_cmd of profile '\(profile)' failed (exit status \(status >> 8))")
        }
        let line = output.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        let password = String(decoding: line, as: UTF8.self)
        guard !password.isEmpty else { throw NanoKVMError(.auth, "password_cmd of profile '\(profile)' printed nothing") }
        return password
    }

    /// Asks for the password on the terminal without echo; nil when stdin is not a terminal
    /// (scripts in pipelines and tests never block on a prompt).
    /// Set for a fleet: the password typed at the prompt for a user is reused for the next
    /// devices that need one for the same user (one question for a rack, not one per device).
    /// Kept in memory only, like every password.
    private static let reusePromptedPasswords = Mutex(false)
    private static let promptedPasswords = Mutex<[String: String]>([:])

    public static func reusePromptedPasswordsForFleet() { reusePromptedPasswords.withLock { $0 = true } }

    public static func promptPassword(for user: String, at device: String) -> String? {
        let reuse = reusePromptedPasswords.withLock { $0 }
        if reuse, let known = promptedPasswords.withLock({ $0[user] }) { return known }
        guard let typed = askPassword(for: user, at: reuse ? "\(device) (and the other devices that need one)" : device) else {
            return nil
        }
        if reuse { promptedPasswords.withLock { $0[user] = typed } }
        return typed
    }

    private static func askPassword(for user: String, at device: String) -> String? {
        guard isatty(0) != 0 else { return nil }
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var original = termios()
        guard tcgetattr(fd, &original) == 0 else { return nil }
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        silent.c_lflag |= tcflag_t(ECHONL)
        let prompt = Array("Password for \(user) at \(device): ".utf8)
        _ = prompt.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
        _ = tcsetattr(fd, TCSAFLUSH, &silent)
        defer { _ = tcsetattr(fd, TCSAFLUSH, &original) }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(fd, &byte, 1)
            if count < 0, errno == EINTR { return nil }
            if count <= 0 || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { break }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }

    // MARK: Token cache

    static var tokenDirectory: String? {
        if let cache = KVMConfig.environment("XDG_CACHE_HOME") { return cache + "/kvmlua/tokens" }
        if let home = KVMConfig.environment("HOME") { return home + "/.cache/kvmlua/tokens" }
        return nil
    }

    static func tokenPath(device: String, user: String) -> String? {
        guard let directory = tokenDirectory else { return nil }
        let safe = (device + "@" + user).map { c -> Character in
            c.isLetter || c.isNumber || c == "." || c == "-" || c == "@" ? c : "_"
        }
        return directory + "/" + String(safe)
    }

    /// A saved session: the token (line 1) and what the connection found about the firmware
    /// (line 2, `firmware <version> multi-user|single-user`; absent in files of older versions).
    public struct SavedSession: Sendable {
        public var token: String
        public var firmware: KnownFirmware?
    }

    public static func cachedToken(device: String, user: String) -> SavedSession? {
        guard let path = tokenPath(device: device, user: user) else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        let lines = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n").map(String.init)
        guard let token = lines.first?.trimmingTrailingNewlines, !token.isEmpty else { return nil }
        return SavedSession(token: token, firmware: lines.count > 1 ? KnownFirmware(line: lines[1]) : nil)
    }

    /// Saves the token and the firmware facts (0600, directory 0700); a nil token removes the file.
    public static func storeToken(_ token: String?, firmware: KnownFirmware? = nil, device: String, user: String) {
        guard let path = tokenPath(device: device, user: user), let directory = tokenDirectory else { return }
        guard let token, !token.isEmpty else {
            unlink(path)
            return
        }
        guard FileSystem.makeDirectories(directory) else { return }
        let text = token + "\n" + (firmware.map { $0.line + "\n" } ?? "")
        FileSystem.writePrivateFile(path, Array(text.utf8))
    }
}

/// Fingerprints of devices' TLS certificates accepted on first use (like ssh's known_hosts):
/// `$XDG_STATE_HOME/kvmlua/known_hosts`, 0600, one `host:port SHA256 AB:CD:…` line each.
public enum KnownHosts {
    public static var path: String? {
        if let state = KVMConfig.environment("XDG_STATE_HOME") { return state + "/kvmlua/known_hosts" }
        if let home = KVMConfig.environment("HOME") { return home + "/.local/state/kvmlua/known_hosts" }
        return nil
    }

    static func key(_ address: DeviceAddress) -> String { "\(address.host.lowercased()):\(address.port)" }

    static func entries() -> [(key: String, fingerprint: String)] {
        guard let path, let text = try? readText(path) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[1] == "SHA256" else { return nil }
            return (key: String(parts[0]), fingerprint: String(parts[2]))
        }
    }

    public static func fingerprint(for address: DeviceAddress) -> String? {
        entries().first { $0.key == key(address) }?.fingerprint
    }

    public static func record(_ fingerprint: String, for address: DeviceAddress) {
        guard let path, let slash = path.lastIndex(of: "/"), FileSystem.makeDirectories(String(path[..<slash])) else { return }
        var lines = entries().filter { $0.key != key(address) }.map { "\($0.key) SHA256 \($0.fingerprint)" }
        lines.append("\(key(address)) SHA256 \(fingerprint)")
        FileSystem.writePrivateFile(path, Array((lines.joined(separator: "\n") + "\n").utf8))
    }

    static func readText(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NanoKVMError(.usage, "cannot read \(path)") }
        defer { close(fd) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            data += buffer[0..<count]
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Asks on the terminal whether to trust a certificate; false without a terminal.
    static func askToTrust(_ address: DeviceAddress, fingerprint: String) -> Bool {
        guard isatty(0) != 0 else { return false }
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let question = """
            The certificate of \(address.baseURL) is not signed by an authority this system trusts
            (a NanoKVM makes its own). Its SHA-256 fingerprint is
              \(fingerprint)
            Trust it and remember it for this device? [y/N] 
            """
        _ = Array(question.utf8).withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
        var answer: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != UInt8(ascii: "\n") { answer.append(byte) }
        let text = String(decoding: answer, as: UTF8.self).lowercased()
        return text == "y" || text == "yes"
    }
}

enum FileSystem {
    /// Writes a file a script asked for (mode 0644 before the umask); errors are `usage`.
    static func writeFile(_ bytes: [UInt8], to path: String) throws(NanoKVMError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw NanoKVMError(.usage, "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { throw NanoKVMError(.usage, "cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += written
        }
    }

    /// mkdir -p with `mode` (default 0700: private) for what it creates.
    static func makeDirectories(_ path: String, mode: mode_t = 0o700) -> Bool {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode) != 0, errno != EEXIST { return false }
        }
        return true
    }

    /// Writes a file readable by its owner only (atomically: temporary file, then rename).
    @discardableResult
    static func writePrivateFile(_ path: String, _ bytes: [UInt8]) -> Bool {
        let temporary = path + ".tmp\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        _ = fchmod(fd, 0o600)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                close(fd)
                unlink(temporary)
                return false
            }
            offset += written
        }
        close(fd)
        return rename(temporary, path) == 0
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var text = self
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        return text
    }
}
