import CLua
import LuaBridge
import NanoKVM
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The Lua `Macro`: timed keyboard/mouse steps (../shared/lua-api.md, "Macros").
final class MacroHandle: LuaSendableObject {
    let macro: Macro
    init(_ macro: Macro) { self.macro = macro }
    static let typeName = "kvm.Macro"
}

enum MacroBindings {
    static func register(in runtime: LuaRuntime) {
        var b = MethodBuilder<MacroHandle>(typeName: MacroHandle.typeName, prefix: "macro:")
        b.add("save", args: "path", "Writes the macro as a `.kvm-macro` file (one step per line; reading it back gives the same macro).") { call, m in
            let path = try call.string(2)
            try Sandbox.checkWrite(path)
            try FileSystem.writeFile(Array(m.macro.text().utf8), to: path)
            return .none
        }
        b.add("duration", returns: "number", "Seconds from the start to the last step.") { call, m in
            call.returning(.number(m.macro.duration))
        }
        b.add("text", returns: "string", "The `.kvm-macro` text of the macro.") { call, m in
            call.returning(.string(m.macro.text()))
        }
        b.add(
            "steps", returns: "table",
            "The steps as a list of `{time=, action=, ...}` tables (`action` is the step's keyword; `spec`, `text`, `x`, `y`, `dx`, `dy`, `button` or `notches` as it needs)."
        ) { call, m in
            call.returning(.array(m.macro.steps.map { step in stepData(step.offset, step.action) }))
        }
        b.add(
            "play", args: "dev [, opts]", options: ["speed", "loops", "layout"],
            """
            Plays the macro on `dev`, every step at its offset from the start (one monotonic clock,
            absolute deadlines). `opts.speed` (2 = twice as fast), `opts.loops` (default 1),
            `opts.layout` for `type` steps (default: the macro's own `layout`, else `dev.layout`). On an error, Ctrl-C or cancellation every
            key and button is released before the error reaches the script.
            """
        ) { call, m in
            let device = try call.object(2, as: DeviceHandle.self, typeName: DeviceHandle.typeName)
            let options = try call.options(3)
            let speed = try options?.number("speed") ?? 1
            guard speed > 0, speed <= 1000 else { throw call.argumentError(3, "field 'speed' must be > 0") }
            let loops = try options?.integer("loops") ?? 1
            guard (1...1_000_000).contains(loops) else { throw call.argumentError(3, "field 'loops' must be >= 1") }
            // opts.layout, else the macro's own (`layout` in a .kvm-macro), else the device's.
            let layout: KeyboardLayout
            if try options?.string("layout") == nil, let own = m.macro.layout {
                layout = try LayoutBindings.resolve(call, own, index: 3)
            } else {
                layout = try LayoutBindings.layout(call, options: options, index: 3, device: device)
            }
            let steps = try m.macro.hidSteps(layout: layout)
            let hid = device.hid
            return .await(.async { () async throws -> [LuaData] in
                _ = try await hid.play(steps, speed: speed, loops: Int(loops))
                return []
            })
        }
        runtime.registerType(
            MacroHandle.self, name: MacroHandle.typeName, methods: b.specs,
            tostring: { macro in
                let seconds = (macro.macro.duration * 1000).rounded() / 1000
                return "kvm.Macro (\(macro.macro.steps.count) steps, \(ConcurrencyBindings.formatSeconds(seconds)) s)"
            },
            length: { $0.macro.steps.count })
        registerRecorder(in: runtime)
    }

    static func stepData(_ offset: Double, _ action: MacroAction) -> LuaData {
        var fields: [(key: LuaData, value: LuaData)] = [
            (key: .string("time"), value: .number(offset)), (key: .string("action"), value: .string(action.keyword)),
        ]
        func add(_ key: String, _ value: LuaData) { fields.append((key: .string(key), value: value)) }
        switch action {
        case .keyDown(let spec), .keyUp(let spec), .key(let spec): add("spec", .string(spec))
        case .type(let text): add("text", .string(text))
        case .move(let x, let y):
            add("x", .number(x))
            add("y", .number(y))
        case .moveBy(let dx, let dy):
            add("dx", .int(dx))
            add("dy", .int(dy))
        case .mouseDown(let button), .mouseUp(let button): add("button", .string(button))
        case .scroll(let notches): add("notches", .int(notches))
        }
        return .table(fields)
    }

    /// Checks key specs while reading a macro, so a bad key name is reported with its line.
    static let keySpecCheck: MacroKeySpecCheck = { KeyChord.problem(in: $0) }

    static func readFile(_ path: String) throws(NanoKVMError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NanoKVMError(.usage, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count < 0 { throw NanoKVMError(.usage, "cannot read \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            data += buffer[0..<count]
            guard data.count <= 64 << 20 else { throw NanoKVMError(.usage, "\(path) is too large for a macro") }
        }
        guard let text = String(validating: data, as: UTF8.self) else { throw NanoKVMError(.usage, "\(path) is not UTF-8 text") }
        return text
    }

    /// Reads a macro file by its kind: `.json` (PiKVM recorder), `.txt`/`.ducky` (DuckyScript),
    /// anything else `.kvm-macro`.
    static func load(_ path: String) throws(NanoKVMError) -> Macro {
        let text = try readFile(path)
        let lower = path.lowercased()
        if lower.hasSuffix(".json") { return try Macro.importPiKVM(text, name: path) }
        if lower.hasSuffix(".txt") || lower.hasSuffix(".ducky") { return try Macro.importDuckyScript(text, name: path) }
        return try Macro.parse(text, name: path, checkKey: keySpecCheck)
    }

    static var functions: [LuaFunctionSpec] {
        [
            LuaFunctionSpec(
                "kvm.macro.parse", signature: "kvm.macro.parse(text)", returns: "Macro",
                """
                Reads `.kvm-macro` text: one step per line, `<offset seconds> <step>` where step is
                `key_down <spec>`, `key_up <spec>`, `key <spec>`, `type "<text>"` (JSON string escapes),
                `move <x> <y>` (fractions), `move_by <dx> <dy>`, `mouse_down <button>`, `mouse_up <button>`
                or `scroll <notches>`; `#` starts a comment. A comment line `# layout: NAME` (any
                `kvm.layouts()` name) names the target's layout for the `type` steps. A bad line raises
                `usage` naming its number.
                """,
                body: { call in
                    let text = try call.string(1)
                    return call.returning(object: MacroHandle(try Macro.parse(text, checkKey: keySpecCheck)))
                }),
            LuaFunctionSpec(
                "kvm.macro.load", signature: "kvm.macro.load(path)", returns: "Macro",
                "Reads a macro file: `.kvm-macro` text, a PiKVM recorder export (`.json`), or DuckyScript (`.txt`, `.ducky`).",
                body: { call in
                    let path = try call.string(1)
                    return call.returning(object: MacroHandle(try load(path)))
                }),
            LuaFunctionSpec(
                "kvm.macro.import_pikvm", signature: "kvm.macro.import_pikvm(json)", returns: "Macro",
                "Converts the text of a PiKVM web recorder export (`script.json`); what has no keyboard/mouse equivalent (ATX, GPIO, random delays) raises `usage` naming it.",
                body: { call in
                    let text = try call.string(1)
                    return call.returning(object: MacroHandle(try Macro.importPiKVM(text)))
                }),
            LuaFunctionSpec(
                "kvm.macro.import_ducky", signature: "kvm.macro.import_ducky(text [, opts])", returns: "Macro", options: ["key_delay"],
                "Converts DuckyScript 1.0 text (REM, DELAY, DEFAULT_DELAY, STRING, STRINGLN, REPEAT, keys and combinations); `opts.key_delay` (default 0.02) spaces the keystrokes. DuckyScript 3 constructs raise `usage` naming the line.",
                body: { call in
                    let text = try call.string(1)
                    let delay = try call.options(2)?.number("key_delay") ?? 0.02
                    guard delay >= 0, delay.isFinite else { throw call.argumentError(2, "field 'key_delay' must be >= 0") }
                    return call.returning(object: MacroHandle(try Macro.importDuckyScript(text, keyDelay: delay)))
                }),
        ]
    }

    /// Pushes the `kvm.macro` table.
    static func pushModule(in runtime: LuaRuntime) {
        lua_createtable(runtime.L, 0, 8)
        runtime.register(functions + [recordFunction], inTableAt: -1)
    }

    static var recordFunction: LuaFunctionSpec {
        LuaFunctionSpec(
            "kvm.macro.record", signature: "kvm.macro.record(dev)", returns: "Recorder",
            """
            Starts recording: every keyboard and mouse call made on `dev` goes to the device as usual
            and is captured with its time (secret text is not). `rec:stop()` returns the Macro; its
            text starts with a `# layout: NAME` line, the layout its `type` steps were typed with
            (else `dev.layout`), which `macro:play` uses on any machine.
            """,
            body: { call in
                let device = try call.object(1, as: DeviceHandle.self, typeName: DeviceHandle.typeName)
                return call.returning(object: RecorderHandle(device: device))
            })
    }

    static func registerRecorder(in runtime: LuaRuntime) {
        var b = MethodBuilder<RecorderHandle>(typeName: RecorderHandle.typeName, prefix: "rec:")
        b.add("stop", returns: "Macro", "Stops recording and returns what was recorded as a Macro.") { call, recorder in
            call.returning(object: MacroHandle(recorder.stop()))
        }
        runtime.registerType(
            RecorderHandle.self, name: RecorderHandle.typeName, methods: b.specs,
            tostring: { "kvm.Recorder (\($0.count) calls\($0.isRecording ? ", recording" : ""))" })
    }
}

/// `kvm.macro.record(dev)`: collects the device's keyboard/mouse calls with their times.
final class RecorderHandle: LuaSendableObject {
    static let typeName = "kvm.Recorder"
    let device: DeviceHandle
    let start: Double
    /// Shared with the observer callback, which runs on the controller's threads.
    private final class Buffer: Sendable {
        let state = Mutex<(records: [HIDCallRecord], observer: Int?)>(([], nil))
    }
    private let buffer = Buffer()

    init(device: DeviceHandle) {
        self.device = device
        start = MonotonicClock.now()
        let buffer = self.buffer
        let id = device.hid.addObserver { record in buffer.state.withLock { $0.records.append(record) } }
        buffer.state.withLock { $0.observer = id }
    }

    deinit {
        if let id = buffer.state.withLock({ $0.observer }) { device.hid.removeObserver(id) }
    }

    var count: Int { buffer.state.withLock { $0.records.count } }
    var isRecording: Bool { buffer.state.withLock { $0.observer != nil } }

    /// Ends the recording (later calls return the same macro).
    func stop() -> Macro {
        let records = buffer.state.withLock { value -> [HIDCallRecord] in
            if let id = value.observer { device.hid.removeObserver(id) }
            value.observer = nil
            return value.records
        }
        return Macro.recorded(records, start: start, defaultLayout: LayoutBindings.defaultLayout(for: device).name)
    }
}
