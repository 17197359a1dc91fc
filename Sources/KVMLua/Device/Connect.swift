import CLua
import LuaBridge
import NanoKVM
import NanoKVMSimulator

#if canImport(Glibc)
    import Glibc
#endif

/// `kvm.connect`, `kvm.sim`, `kvm.profiles`.
enum ConnectBindings {
    static var functions: [LuaFunctionSpec] {
        [
            LuaFunctionSpec(
                "kvm.connect", signature: "kvm.connect(target [, opts])", returns: "Device",
                options: ["user", "password", "token", "insecure", "fingerprint", "ca", "timeout", "protocol", "layout", "name"],
                """
                Logs in to a NanoKVM and returns a Device. `target`: a URL (`http://host[:port]`,
                `https://...`), a bare host (http), or a profile name of the config file; nil uses
                $KVMLUA_DEVICE. `opts`: `user` (default "admin"), `password`, `token` (reuse a
                token, no login), `insecure` (no TLS verification), `fingerprint` (pin the
                certificate's SHA-256), `ca` (PEM file), `timeout` (per request, default 10),
                `protocol` ("auto", "legacy", "current"), `layout` (`dev.layout`; a profile's `layout` is
                the default), `name` (`dev.name`; default the profile name, else the host, with
                `:port` when it is not the scheme's default). The password comes from `opts`, the
                profile, $NANOKVM_PASSWORD, or a prompt on the terminal; a still valid token
                from an earlier run is reused unless `password` or `token` is given.
                """,
                body: { call in try connect(call) }),
            LuaFunctionSpec(
                "kvm.sim", signature: "kvm.sim([opts])", returns: "Device",
                options: [
                    "generation", "width", "height", "fps", "time_scale", "login_delay_scale", "host_layout",
                    "inspection", "authentication", "password", "users", "scene", "power", "clock",
                    "target_hostname", "target_user", "target_password", "name",
                ],
                """
                Starts the built-in simulated NanoKVM on 127.0.0.1 in this process and returns a
                Device connected to it. `opts`: `generation` ("current" default, or "legacy" for
                2.0.x firmware), `width`, `height`, `fps`, `time_scale` (1 = real button and
                paste timing, 0 = none), `login_delay_scale`, `host_layout` (the simulated host's
                keyboard layout, any `kvm.layouts()` name: "us" default, "ch(fr)", "gb" …; it
                also becomes `dev.layout`), `password` (of `admin`), `users` (more accounts:
                `{ {name=, password=, role="user"|"admin"} }`), `authentication` (false: the
                device asks for no login), `inspection` (the test-only `/__sim/` endpoints),
                `scene` (what the simulated host is: "console" default, the minimal echo console;
                "machine"/"post" the machine that boots from power-on: POST with its DEL/F12
                window, firmware setup, boot menu, GRUB, the installer from an image mounted as
                CD-ROM, the Linux console login; or start at "bios", "bootmenu", "grub",
                "installer", "login"; `--sim` uses "machine"; its timings are the real ones times
                `time_scale`, at least 5 %), `power` (the host is on at start, default true),
                `clock` (fixes the machine's clock, Unix seconds), `target_hostname`
                ("kvmtarget"), `target_user` ("root"), `target_password` ("root": the machine's
                console account), `name` (`dev.name`, default "sim"). `dev:close()` stops it.
                """,
                body: { call in try simulate(call) }),
            LuaFunctionSpec(
                "kvm.profiles", signature: "kvm.profiles()", returns: "table",
                "The config file's profiles: name -> `{url=, user=}` (never the password).",
                body: { call in
                    let profiles = try KVMConfig.loadProfiles()
                    let entries = profiles.keys.sorted().compactMap { name -> (key: LuaData, value: LuaData)? in
                        guard let profile = profiles[name] else { return nil }
                        var fields: [(key: LuaData, value: LuaData)] = [(key: .string("url"), value: .string(profile.url))]
                        fields.append((key: .string("user"), value: .string(profile.user ?? "admin")))
                        return (key: .string(name), value: .table(fields))
                    }
                    return call.returning(.table(entries))
                }),
        ]
    }

    /// The pieces of `kvm.connect` options, read on the Lua thread.
    struct Request {
        var target: String
        var user: String?
        var password: String?
        var token: String?
        var insecure = false
        var fingerprint: String?
        var ca: String?
        var timeout: Double?
        var protocolSelection: ProtocolSelection = .auto
        /// The profile's or `opts.layout`: `dev.layout` of the new device.
        var layout: KeyboardLayout?
        /// `dev.name`: `opts.name`, else the profile's name (nil: named after the address).
        var name: String?
    }

    static func readRequest(_ call: LuaCall) throws -> (Request, DeviceProfile?) {
        let explicitTarget = try call.optionalString(1)
        guard let target = explicitTarget ?? KVMConfig.environment("KVMLUA_DEVICE") else {
            throw call.argumentError(1, "a target (URL, host or profile name) is needed, or set KVMLUA_DEVICE")
        }
        var request = Request(target: target)
        var profile: DeviceProfile?
        if !target.contains("://") {
            profile = try KVMConfig.loadProfiles()[target]
        }
        if let profile {
            request.name = profile.name
            request.target = profile.url
            request.user = profile.user
            request.password = profile.password
            request.fingerprint = profile.fingerprint
            request.ca = profile.ca
            request.insecure = profile.insecure ?? false
            request.timeout = profile.timeout
            if let name = profile.protocolName {
                guard let selection = ProtocolSelection(rawValue: name) else {
                    throw NanoKVMError(.usage, "profile '\(profile.name)': protocol must be auto, legacy or current")
                }
                request.protocolSelection = selection
            }
            if let name = profile.layout {
                do { request.layout = try KeyboardLayout.resolve(name) } catch {
                    throw NanoKVMError(.usage, "profile '\(profile.name)': \(error.message)")
                }
            }
        }
        if let options = try call.options(2) {
            if let name = try options.string("layout") { request.layout = try LayoutBindings.resolve(call, name, index: 2) }
            if let name = try options.string("name") {
                guard !name.isEmpty else { throw call.argumentError(2, "field 'name' must not be empty") }
                request.name = name
            }
            if let user = try options.string("user") { request.user = user }
            if let password = try options.string("password") { request.password = password }
            if let token = try options.string("token") { request.token = token }
            if let insecure = try options.boolean("insecure") { request.insecure = insecure }
            if let fingerprint = try options.string("fingerprint") { request.fingerprint = fingerprint }
            if let ca = try options.string("ca") { request.ca = ca }
            if let timeout = try options.number("timeout") {
                guard timeout > 0, timeout.isFinite else { throw call.argumentError(2, "field 'timeout' must be > 0") }
                request.timeout = timeout
            }
            if let name = try options.string("protocol") {
                guard let selection = ProtocolSelection(rawValue: name) else {
                    throw call.argumentError(2, "field 'protocol' must be \"auto\", \"legacy\" or \"current\"")
                }
                request.protocolSelection = selection
            }
        }
        if let password = request.password { Secrets.register(password) }
        if let token = request.token { Secrets.register(token) }
        return (request, profile)
    }

    /// How to trust the certificate: explicit options first, then a fingerprint accepted
    /// earlier (known_hosts), else the system's authorities (trust on first use follows).
    static func trust(for request: Request, address: DeviceAddress) -> (trust: TLSTrust, known: Bool) {
        if request.insecure { return (.insecure, false) }
        if let fingerprint = request.fingerprint { return (.pinnedSHA256(fingerprint), false) }
        if let ca = request.ca { return (.certificateAuthority(pemFile: ca), false) }
        if address.scheme == .https, let known = KnownHosts.fingerprint(for: address) { return (.pinnedSHA256(known), true) }
        return (.system, false)
    }

    /// Connects; for an https device whose certificate no authority vouches for, asks on the
    /// terminal (once) and records the fingerprint, like ssh. A recorded fingerprint that no
    /// longer matches is refused with the way out.
    static func connectTrusting(_ options: ConnectionOptions, knownHost: Bool) async throws(NanoKVMError) -> NanoKVMClient {
        let failure: NanoKVMError
        do {
            return try await NanoKVMClient.connect(options)
        } catch {
            failure = error
        }
        let address = options.address
        guard failure.kind == .transport, address.scheme == .https else { throw failure }
        if knownHost {
            guard failure.message.contains("fingerprint mismatch") else { throw failure }
            throw NanoKVMError(
                .transport,
                "the certificate of \(address.baseURL) changed since it was trusted (\(failure.message)); if the device was reset or re-keyed, remove its line from \(KnownHosts.path ?? "known_hosts")",
                device: address.baseURL)
        }
        guard case .system = options.trust, CertificateProbe.isCertificateVerificationFailure(failure) else { throw failure }
        let fingerprint = try await CertificateProbe.fingerprint(of: address, timeout: options.timeout)
        guard KnownHosts.askToTrust(address, fingerprint: fingerprint) else {
            throw NanoKVMError(
                .transport,
                "the certificate of \(address.baseURL) is not trusted (SHA-256 \(fingerprint)); pin it with {fingerprint=\"\(fingerprint)\"} or a profile's fingerprint, or use --insecure",
                device: address.baseURL)
        }
        KnownHosts.record(fingerprint, for: address)
        var pinned = options
        pinned.trust = .pinnedSHA256(fingerprint)
        return try await NanoKVMClient.connect(pinned)
    }

    static func connect(_ call: LuaCall) throws -> LuaReturn {
        let (request, profile) = try readRequest(call)
        let address = try DeviceAddress(parsing: request.target)
        let user = request.user ?? "admin"
        let explicit = request.password != nil || request.token != nil
        var password = request.password
        if password == nil, request.token == nil, let profile, let command = profile.passwordCommand {
            password = try Credentials.runPasswordCommand(command, profile: profile.name)
            if let password { Secrets.register(password) }
        }
        if password == nil, request.token == nil, let fromEnvironment = KVMConfig.environment("NANOKVM_PASSWORD") {
            password = fromEnvironment
        }
        let cached = explicit ? nil : Credentials.cachedToken(device: address.baseURL, user: user)
        if password == nil, request.token == nil, cached == nil {
            // Ask only when nothing else gives a password (a device may have authentication off).
            password = Credentials.promptPassword(for: user, at: address.baseURL)
            if let password { Secrets.register(password) }
        }
        let (trust, knownHost) = trust(for: request, address: address)
        let layout = request.layout
        let name = request.name ?? address.displayName
        var connection = ConnectionOptions(
            address: address, username: user, password: password, token: request.token ?? cached?.token,
            trust: trust, timeout: .milliseconds(Int64((request.timeout ?? 10) * 1000)),
            protocolSelection: request.protocolSelection)
        // A saved session that knows the firmware starts without reading it first (issue 11:
        // process start → screenshot); the client confirms it in the background.
        if request.token == nil { connection.knownFirmware = cached?.firmware }
        let options = connection
        let fallback = cached != nil && request.token == nil
            ? ConnectionOptions(
                address: address, username: user, password: password, token: nil, trust: options.trust,
                timeout: options.timeout, protocolSelection: options.protocolSelection) : nil
        return .await(
            .async(
                { () async throws -> DeviceHandle in
                    let client: NanoKVMClient
                    do {
                        client = try await connectTrusting(options, knownHost: knownHost)
                    } catch let error as NanoKVMError where error.kind == .auth && fallback != nil {
                        // The cached token was not accepted and there is no password to renew it.
                        Credentials.storeToken(nil, device: address.baseURL, user: user)
                        guard let fallback, fallback.password != nil else {
                            throw NanoKVMError(
                                .auth,
                                "the saved session expired; give a password (opts.password, a profile, or NANOKVM_PASSWORD)",
                                device: address.baseURL)
                        }
                        client = try await connectTrusting(fallback, knownHost: knownHost)
                    }
                    if let token = await client.currentToken() {
                        Credentials.storeToken(token, firmware: client.knownFirmware, device: client.baseURL, user: user)
                    }
                    return DeviceHandle(client: client, name: name, cachesToken: true, layout: layout)
                },
                push: { device, stack in
                    LuaRuntime.owning(stack.L)?.push(object: device, on: stack.L)
                    return 1
                }))
    }

    static func simulate(_ call: LuaCall) throws -> LuaReturn {
        var configuration = SimulatorConfiguration()
        var deviceLayout: KeyboardLayout?
        var name = "sim"
        if let options = try call.options(1) {
            if let given = try options.string("name") {
                guard !given.isEmpty else { throw call.argumentError(1, "field 'name' must not be empty") }
                name = given
            }
            if let name = try options.string("generation") {
                guard let generation = SimulatorGeneration(rawValue: name) else {
                    throw call.argumentError(1, "field 'generation' must be \"current\" or \"legacy\"")
                }
                configuration.generation = generation
            }
            if let width = try options.integer("width") { configuration.width = Int(width) }
            if let height = try options.integer("height") { configuration.height = Int(height) }
            guard (16...7680).contains(configuration.width), (16...4320).contains(configuration.height) else {
                throw call.argumentError(1, "width and height must be 16..7680 and 16..4320")
            }
            if let fps = try options.integer("fps") {
                guard (1...120).contains(fps) else { throw call.argumentError(1, "field 'fps' must be 1..120") }
                configuration.fps = Int(fps)
            }
            if let scale = try options.number("time_scale") {
                guard scale >= 0, scale.isFinite else { throw call.argumentError(1, "field 'time_scale' must be >= 0") }
                configuration.timeScale = scale
            }
            if let scale = try options.number("login_delay_scale") {
                guard scale >= 0, scale.isFinite else { throw call.argumentError(1, "field 'login_delay_scale' must be >= 0") }
                configuration.loginDelayScale = scale
            }
            if let inspection = try options.boolean("inspection") { configuration.inspection = inspection }
            if let name = try options.string("host_layout") {
                let layout = try LayoutBindings.resolve(call, name, index: 1)
                configuration.hostLayout = layout
                // The device types in what its host understands unless the script says otherwise.
                deviceLayout = layout
            }
            if let authentication = try options.boolean("authentication") { configuration.authenticationDisabled = !authentication }
            if let name = try options.string("scene") {
                guard let scene = SimulatorScene(rawValue: name) else {
                    let names = SimulatorScene.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                    throw call.argumentError(1, "field 'scene' must be one of \(names)")
                }
                configuration.scene = scene
            }
            if let power = try options.boolean("power") { configuration.hostPoweredOn = power }
            if let clock = try options.number("clock") {
                guard clock.isFinite, clock >= 0 else { throw call.argumentError(1, "field 'clock' must be Unix seconds >= 0") }
                configuration.fixClock(unixSeconds: clock)
            }
            if let hostname = try options.string("target_hostname") {
                guard !hostname.isEmpty else { throw call.argumentError(1, "field 'target_hostname' must not be empty") }
                configuration.targetHostname = hostname
            }
            if let user = try options.string("target_user") {
                guard !user.isEmpty else { throw call.argumentError(1, "field 'target_user' must not be empty") }
                configuration.targetUser = user
            }
            if let password = try options.string("target_password") { configuration.targetPassword = password }
            if let password = try options.string("password") { configuration.password = password }
            if options.has("users") {
                call.stack.rawField(options.index, "users")
                defer { call.stack.pop() }
                guard call.type(-1) == .table else { throw call.argumentError(1, "field 'users' must be a list of {name=, password=, role=}") }
                let users = LuaTableArgument(call: call, index: -1)
                for i in 0..<users.length {
                    guard users.pushElement(i + 1) == .table else {
                        call.stack.pop()
                        throw call.argumentError(1, "field 'users' must be a list of {name=, password=, role=}")
                    }
                    defer { call.stack.pop() }
                    let user = LuaTableArgument(call: call, index: -1)
                    guard let name = try user.string("name"), let password = try user.string("password") else {
                        throw call.argumentError(1, "each user needs 'name' and 'password'")
                    }
                    let role = SimulatorRole(rawValue: try user.string("role") ?? "user") ?? .user
                    configuration.users.append(SimulatorUser(username: name, password: password, role: role))
                }
            }
        }
        let simulator = NanoKVMSimulator(configuration: configuration)
        let chosenLayout = deviceLayout
        let deviceName = name
        let username = configuration.username
        let password = configuration.password
        return .await(
            .async(
                { () async throws -> DeviceHandle in
                    do {
                        try await simulator.start()
                    } catch {
                        throw NanoKVMError(.transport, "cannot start the simulator: \(error)")
                    }
                    do {
                        let options = try ConnectionOptions(url: simulator.baseURL, username: username, password: password)
                        let client = try await NanoKVMClient.connect(options)
                        return DeviceHandle(
                            client: client, name: deviceName, simulator: simulator, cachesToken: false, layout: chosenLayout)
                    } catch {
                        await simulator.stop()
                        throw error
                    }
                },
                push: { device, stack in
                    LuaRuntime.owning(stack.L)?.push(object: device, on: stack.L)
                    return 1
                }))
    }
}
