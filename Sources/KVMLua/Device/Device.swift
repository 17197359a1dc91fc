import CLua
import LuaBridge
import NanoKVM
import NanoKVMSimulator
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The Lua `Device`: one connected NanoKVM (../shared/lua-api.md, "Device").
final class DeviceHandle: LuaSendableObject {
    let client: NanoKVMClient
    /// Keyboard and mouse (the WebSocket opens on the first call).
    let hid: HIDController
    /// The simulator this device runs on, when `kvm.sim()` made it (stopped by `dev:close()`).
    let simulator: NanoKVMSimulator?
    /// Whether tokens of this device are cached (not for the simulator or explicit tokens).
    let cachesToken: Bool

    /// `dev.layout`: the keyboard layout `dev:type` uses when a call names none (nil: the
    /// command line's `--layout`, else us). Set from the profile's `layout` or by the script.
    let layout: Mutex<KeyboardLayout?>
    /// `dev.name`: the profile name, `opts.name`, or the host (`host:port` off the default
    /// port); fleet output is prefixed with it and `{device}` in paths becomes it.
    let name: String

    init(
        client: NanoKVMClient, name: String, simulator: NanoKVMSimulator? = nil, cachesToken: Bool,
        layout: KeyboardLayout? = nil
    ) {
        self.name = name
        self.layout = Mutex(layout)
        self.client = client
        self.hid = client.makeHIDController()
        self.simulator = simulator
        self.cachesToken = cachesToken
        OpenDevices.add(self)
    }

    static let typeName = "kvm.Device"

    /// Runs `work` with the client as an operation; its result becomes the Lua result.
    func run<T: LuaDataConvertible>(_ work: @escaping @Sendable (NanoKVMClient) async throws -> T) -> LuaReturn {
        let client = self.client
        return .await(.async { () async throws -> [LuaData] in [try await work(client).luaData] })
    }

    /// Runs `work` with the client as an operation that returns nothing.
    func run(_ work: @escaping @Sendable (NanoKVMClient) async throws -> Void) -> LuaReturn {
        let client = self.client
        return .await(.async { () async throws -> [LuaData] in
            try await work(client)
            return []
        })
    }

    /// Releases keyboard and mouse, saves the token, closes the connection (and the simulator).
    func shutDown() async {
        await hid.close()
        if cachesToken, let token = await client.currentToken() {
            Credentials.storeToken(token, firmware: client.knownFirmware, device: client.baseURL, user: client.username)
        }
        await client.close()
        await simulator?.stop()
    }

    var summary: String {
        "kvm.Device \(client.baseURL) (\(client.username), \(client.generation.rawValue) \(client.version))"
    }
}

/// Builds the method specs of one userdata type: the signature from the name and arguments,
/// `self` checked before the body runs.
struct MethodBuilder<Handle: AnyObject> {
    let typeName: String
    /// `dev:` or `dev.storage:`
    let prefix: String
    private(set) var specs: [LuaFunctionSpec] = []

    init(typeName: String, prefix: String) {
        self.typeName = typeName
        self.prefix = prefix
    }

    mutating func append(_ spec: LuaFunctionSpec) { specs.append(spec) }

    mutating func add(
        _ name: String, args arguments: String = "", returns: String = "", options: [String] = [], _ documentation: String,
        _ body: @escaping (LuaCall, Handle) throws -> LuaReturn
    ) {
        let typeName = self.typeName
        specs.append(
            LuaFunctionSpec(
                prefix + name, signature: "\(prefix)\(name)(\(arguments))", returns: returns, options: options, documentation,
                body: { call in try body(call, try call.object(1, as: Handle.self, typeName: typeName)) }))
    }
}

/// A sub-object of a device (`dev.storage`, `dev.system`, ...): one Swift type per area so
/// each gets its own metatable.
final class DeviceArea<Kind: DeviceAreaKind>: LuaSendableObject {
    let device: DeviceHandle
    init(_ device: DeviceHandle) { self.device = device }
}

protocol DeviceAreaKind: Sendable {
    /// The field of the device (`storage`) and the Lua type name (`kvm.Device.storage`).
    static var field: String { get }
    static func methods() -> [LuaFunctionSpec]
}

extension DeviceAreaKind {
    static var typeName: String { "kvm.Device.\(field)" }
    static var prefix: String { "dev.\(field):" }
    static func builder() -> MethodBuilder<DeviceArea<Self>> { MethodBuilder(typeName: typeName, prefix: prefix) }
}

enum DeviceBindings {
    static let areas: [any DeviceAreaKind.Type] = [
        StorageArea.self, VirtualArea.self, HIDArea.self, StreamArea.self, NetworkArea.self, SystemArea.self,
        ScriptsArea.self, TailscaleArea.self, AuthArea.self,
    ]

    /// Every userdata type of a device: the device and its areas (`dev.hid`, ...).
    static var objectTypes: [(type: AnyObject.Type, name: String)] {
        [(DeviceHandle.self, DeviceHandle.typeName)] + areas.map { areaObjectType($0) }
    }

    private static func areaObjectType<Kind: DeviceAreaKind>(_ kind: Kind.Type) -> (type: AnyObject.Type, name: String) {
        (DeviceArea<Kind>.self, Kind.typeName)
    }

    static func register(in runtime: LuaRuntime) {
        for area in areas { registerArea(area, in: runtime) }
        var properties: [String: LuaPropertyGetter<DeviceHandle>] = [
            "url": { device, stack in stack.push(.string(device.client.baseURL)) },
            "name": { device, stack in stack.push(.string(device.name)) },
            "user": { device, stack in stack.push(.string(device.client.username)) },
            "generation": { device, stack in stack.push(.string(device.client.generation.rawValue)) },
            "version": { device, stack in stack.push(.string(device.client.version)) },
        ]
        for area in areas {
            properties[area.field] = areaGetter(area)
        }
        properties["layout"] = { device, stack in stack.push(.string(LayoutBindings.defaultLayout(for: device).name)) }
        let setters: [String: LuaPropertySetter<DeviceHandle>] = [
            "layout": { device, call in
                let layout = call.isNoneOrNil(3) ? nil : try LayoutBindings.resolve(call, try call.string(3), index: 3)
                device.layout.withLock { $0 = layout }
            }
        ]
        runtime.registerType(
            DeviceHandle.self, name: DeviceHandle.typeName, methods: methods(), properties: properties,
            setters: setters, tostring: { $0.summary })
    }

    private static func registerArea<Kind: DeviceAreaKind>(_ kind: Kind.Type, in runtime: LuaRuntime) {
        runtime.registerType(
            DeviceArea<Kind>.self, name: Kind.typeName, methods: Kind.methods(),
            tostring: { "\(Kind.typeName) of \($0.device.client.baseURL)" })
    }

    private static func areaGetter<Kind: DeviceAreaKind>(_ kind: Kind.Type) -> LuaPropertyGetter<DeviceHandle> {
        { device, stack in
            if let runtime = LuaRuntime.owning(stack.L) {
                runtime.push(object: DeviceArea<Kind>(device), on: stack.L)
            } else {
                stack.push(.null)
            }
        }
    }

    // MARK: Device methods

    /// Milliseconds of a button press: a number, "short" (800) or "long" (8000).
    static func pressDuration(_ call: LuaCall, _ index: Int32) throws(LuaUsageError) -> Int {
        switch call.type(index) {
        case .none, .nil: return GPIOAPI.shortPress
        case .number:
            let value = try call.number(index)
            guard value >= 1, value <= 60_000, value == value.rounded() else {
                throw call.argumentError(index, "duration must be 1..60000 milliseconds")
            }
            return Int(value)
        case .string:
            switch try call.string(index) {
            case "short": return GPIOAPI.shortPress
            case "long": return GPIOAPI.longPress
            case let other: throw call.argumentError(index, "duration must be milliseconds, \"short\" or \"long\", got \"\(other)\"")
            }
        default:
            throw call.typeError(index, expected: "number or string")
        }
    }

    static func methods() -> [LuaFunctionSpec] {
        var b = MethodBuilder<DeviceHandle>(typeName: DeviceHandle.typeName, prefix: "dev:")
        b.add(
            "info", returns: "table",
            "Device information: `ip` (first address), `ips`, `mdns`, `image`, `version` (application), `device_key`, and `raw` (the device's own data)."
        ) { _, d in d.run { try await $0.info() } }
        b.add(
            "hardware", returns: "table or nil",
            "Hardware revision as `{version=\"Alpha\"|\"Beta\"|\"PCIe\"}`; nil on firmware without the endpoint."
        ) { _, d in
            d.run { client -> LuaDataWrapper in
                guard let version = try await client.hardware() else { return LuaDataWrapper(.null) }
                return LuaDataWrapper(.fields(["version": .string(version)]))
            }
        }
        b.add(
            "request", args: "method, path [, body]", returns: "data",
            """
            Raw access: sends `method` (`"GET"`, `"POST"`, `"DELETE"`, ...) to `path` (starting with `/api/`),
            with `body` (a table) as JSON, and returns the `data` of the device's answer. Raises `api`
            when the device answers with a non-zero code.
            """
        ) { call, d in
            let method = try call.string(2).uppercased()
            let path = try call.string(3)
            guard path.hasPrefix("/") else { throw call.argumentError(3, "path must start with '/'") }
            let body = call.isNoneOrNil(4) ? nil : try call.json(4)
            return d.run { try await $0.request(method, path, body: body) }
        }
        b.add("logout", "Logs out: the device invalidates the session's token (and on most firmware every session).") { _, d in
            let cached = d.cachesToken
            return d.run { client in
                try await client.auth.logout()
                if cached { Credentials.storeToken(nil, device: client.baseURL, user: client.username) }
            }
        }
        b.add("close", "Closes the connection (keyboard and mouse are released first); later calls raise `usage`.") { _, d in
            OpenDevices.remove(d)
            return .await(.async({ () async throws -> [LuaData] in
                await d.shutDown()
                return []
            }).asCleanup)
        }
        b.add("leds", returns: "table", "The ATX LEDs: `{power=bool, hdd=bool}` (hdd is only wired on Alpha hardware).") { _, d in
            d.run { try await $0.gpio.leds() }
        }
        b.add("is_on", returns: "boolean", "Whether the power LED is lit (the target is on).") { _, d in
            d.run { try await $0.gpio.leds().power }
        }
        b.add(
            "power", args: "[d]",
            "Presses the power button for `d` milliseconds, `\"short\"` (800, default) or `\"long\"` (8000); returns when the press ends."
        ) { call, d in
            let milliseconds = try pressDuration(call, 2)
            return d.run { try await $0.gpio.press(.power, milliseconds: milliseconds) }
        }
        b.add("reset", args: "[d]", "Presses the reset button (default 800 ms; same durations as `dev:power`).") { call, d in
            let milliseconds = try pressDuration(call, 2)
            return d.run { try await $0.gpio.press(.reset, milliseconds: milliseconds) }
        }
        for on in [true, false] {
            b.add(
                on ? "power_on" : "power_off", args: "[opts]", returns: "boolean", options: on ? ["timeout"] : ["timeout", "force"],
                on
                    ? "Turns the target on if the power LED is off: one short press, then waits until the LED is lit (`opts.timeout`, default 60 s; `timeout` error otherwise). Returns whether it pressed."
                    : "Turns the target off if the power LED is lit: a short press (`opts.force = true`: a long 8 s press), then waits until the LED is off (`opts.timeout`, default 60 s). Returns whether it pressed."
            ) { call, d in
                let options = try call.options(2)
                let timeout = try options?.number("timeout") ?? 60
                guard timeout > 0, timeout.isFinite else { throw call.argumentError(2, "field 'timeout' must be > 0") }
                let force = on ? false : (try options?.boolean("force") ?? false)
                return d.run { client in try await PowerControl.set(client, on: on, force: force, timeout: timeout) }
            }
        }
        b.add(
            "paste", args: "text [, opts]", options: ["layout", "secret"],
            """
            Types `text` with the device's own paste endpoint (`opts.layout`: `"en"` (default), `"de"`,
            `"fr"`); text longer than the firmware accepts goes in several requests. Characters the
            device cannot type are skipped by the device. `opts.secret = true`: the text is never logged
            or kept in history. For exact typing use `dev:type`.
            """
        ) { call, d in
            let text = try call.string(2)
            let options = try call.options(3)
            var layout: PasteLayout?
            if let name = try options?.string("layout") {
                guard let known = PasteLayout(rawValue: name == "us" ? "en" : name) else {
                    throw call.argumentError(3, "unknown paste layout '\(name)' (en, de, fr)")
                }
                layout = known
            }
            if try options?.boolean("secret") == true { Secrets.register(text) }
            let chosen = layout
            return d.run { client in _ = try await client.hid.paste(text, layout: chosen) }
        }
        b.add(
            "keyboard_leds", returns: "table",
            "The target's keyboard LEDs `{caps=bool, num=bool, scroll=bool}` where the firmware reports them (2.5.0+), else raises `unsupported`."
        ) { _, d in d.run { try await $0.hid.keyboardLEDs() } }
        b.add(
            "stream_settings", args: "t",
            "Sets video settings: `quality` (JPEG 1..100), `fps` (10..60), `resolution` (1080, 720, 600, 480, or 0 for the capture's own), where the firmware supports them."
        ) { call, d in try StreamArea.applySettings(call, d, tableIndex: 2) }
        b.add(
            "sim_state", returns: "table",
            "For a device made by `kvm.sim()`: the simulator's inside view (power, console text, pressed keys, mouse, mounted image, ...), for tests."
        ) { _, d in
            guard let simulator = d.simulator else {
                throw NanoKVMError(.unsupported, "sim_state: this device is not a simulator", device: d.client.baseURL)
            }
            return .await(.async { () async throws -> [LuaData] in [await simulator.state().json.luaData] })
        }
        for spec in ScreenBindings.deviceMethods() + InputBindings.methods() + [LiveKeyboard.spec] { b.append(spec) }
        b.add(
            "sim_fault", args: "name [, opts]", options: ["path", "seconds", "reports"],
            """
            For a device made by `kvm.sim()`: makes the simulator misbehave once, for tests. `name`:
            "http500", "malformed_json", "not_an_envelope", "drop_connection", "delay" (`opts.seconds`),
            "drop_websockets", "drop_websockets_after" (`opts.reports`), "truncate_mjpeg",
            "truncate_mjpeg_and_continue", "garble_mjpeg", "expire_tokens"; `opts.path` limits the
            request faults to paths starting with it.
            """
        ) { call, d in
            guard let simulator = d.simulator else {
                throw NanoKVMError(.unsupported, "sim_fault: this device is not a simulator", device: d.client.baseURL)
            }
            let name = try call.string(2)
            let options = try call.options(3)
            let path = try options?.string("path")
            let fault: SimulatorFault
            switch name {
            case "http500": fault = .http500(path: path)
            case "malformed_json": fault = .malformedJSON(path: path)
            case "not_an_envelope": fault = .notAnEnvelope(path: path)
            case "drop_connection": fault = .dropConnection(path: path)
            case "delay": fault = .delay(seconds: try options?.number("seconds") ?? 1, path: path)
            case "drop_websockets": fault = .dropWebSockets
            case "drop_websockets_after": fault = .dropWebSocketsAfter(reports: Int(try options?.integer("reports") ?? 1))
            case "truncate_mjpeg": fault = .truncateNextMJPEGPart
            case "truncate_mjpeg_and_continue": fault = .truncateMJPEGPartAndContinue
            case "garble_mjpeg": fault = .garbleNextMJPEGPart
            case "expire_tokens": fault = .expireTokens
            default: throw call.argumentError(2, "unknown fault '\(name)'")
            }
            simulator.inject(fault)
            return .none
        }
        return b.specs
    }
}

/// Wraps a ready `LuaData` so closures can return "a table or nil".
struct LuaDataWrapper: LuaDataConvertible {
    let luaData: LuaData
    init(_ data: LuaData) { luaData = data }
}

/// State-aware power (the device only has a button): read the LED, press only if needed,
/// wait until the LED agrees.
enum PowerControl {
    static func set(_ client: NanoKVMClient, on: Bool, force: Bool, timeout: Double) async throws -> Bool {
        if try await client.gpio.leds().power == on { return false }
        try await client.gpio.press(.power, milliseconds: force ? GPIOAPI.longPress : GPIOAPI.shortPress)
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while ContinuousClock.now < deadline {
            if try await client.gpio.leds().power == on { return true }
            do {
                try await Task.sleep(for: .milliseconds(250))
            } catch {
                throw NanoKVMError(.cancelled, "cancelled", device: client.baseURL)
            }
        }
        throw NanoKVMError(
            .timeout, "the power LED did not turn \(on ? "on" : "off") within \(ConcurrencyBindings.formatSeconds(timeout)) s",
            device: client.baseURL)
    }
}

/// Devices not closed yet, so that nothing stays pressed when the process ends (normal end,
/// `os.exit`, an error): an exit handler releases them.
public enum OpenDevices {
    private static let devices = Mutex<[ObjectIdentifier: DeviceHandle]>([:])
    private static let handlerInstalled = Mutex(false)

    static func add(_ device: DeviceHandle) {
        devices.withLock { $0[ObjectIdentifier(device)] = device }
        let install = handlerInstalled.withLock { installed in
            defer { installed = true }
            return !installed
        }
        if install { atexit { OpenDevices.releaseAllAtExit() } }
    }

    static func remove(_ device: DeviceHandle) {
        _ = devices.withLock { $0.removeValue(forKey: ObjectIdentifier(device)) }
    }

    /// Runs on the exiting thread; waits at most two seconds for the devices to release.
    public static func releaseAllAtExit() {
        let open = devices.withLock { all in
            defer { all.removeAll() }
            return Array(all.values)
        }
        guard !open.isEmpty else { return }
        let done = DispatchSemaphoreLike()
        Task.detached {
            await withTaskGroup(of: Void.self) { group in
                for device in open { group.addTask { await device.hid.close() } }
            }
            done.signal()
        }
        done.wait(seconds: 2)
    }
}

/// A one-shot signal a plain thread can wait on (no Dispatch needed).
final class DispatchSemaphoreLike: Sendable {
    private let state = Mutex(false)

    func signal() { state.withLock { $0 = true } }

    func wait(seconds: Double) {
        let deadline = monotonicSeconds() + seconds
        while !state.withLock({ $0 }), monotonicSeconds() < deadline {
            var pause = timespec(tv_sec: 0, tv_nsec: 5_000_000)
            nanosleep(&pause, nil)
        }
    }
}

/// Device methods written in Lua (`dev:hold`, the text waits): the chunk is called with the
/// Device methods table and adds its functions to it; each spec then documents the function of
/// its name, so `help()` and the reference see them like the Swift ones.
enum DeviceLuaMethods {
    static func install(
        _ chunk: String, chunkName: String, in runtime: LuaRuntime, documenting specs: [LuaFunctionSpec]
    ) throws(LuaRuntimeError) {
        let L = runtime.L
        guard runtime.load(chunk, chunkName: "=" + chunkName) == LUA_OK else {
            throw LuaRuntimeError("internal chunk \(chunkName) does not compile: \(runtime.string(at: -1) ?? "?")")
        }
        kvm_luaL_getmetatable(L, DeviceHandle.typeName)
        LuaStack(L).rawField(-1, "__methods")
        kvm_lua_remove(L, -2)
        lua_pushvalue(L, -1)
        let methods = LuaRef(popping: L)
        guard kvm_lua_pcall(L, 1, 0, 0) == LUA_OK else {
            let message = runtime.string(at: -1) ?? "?"
            kvm_lua_pop(L, 1)
            throw LuaRuntimeError("cannot install \(chunkName): \(message)")
        }
        methods.push(on: L)
        for spec in specs {
            LuaStack(L).rawField(-1, spec.shortName)
            runtime.document(functionOnTop: spec)
            kvm_lua_pop(L, 1)
        }
        kvm_lua_pop(L, 1)
    }
}
