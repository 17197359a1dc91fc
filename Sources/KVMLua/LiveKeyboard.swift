import CLua
import LuaBridge
import NanoKVM
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `dev:live()`: the local terminal in raw mode forwards every key to the target as it is
/// pressed, until Ctrl-] (as in telnet). Printable characters are typed with the layout,
/// control keys and escape sequences become chords.
enum LiveKeyboard {
    static var spec: LuaFunctionSpec {
        LuaFunctionSpec(
            "dev:live", signature: "dev:live([opts])", returns: "Macro or nil",
            """
            REPL only: every key pressed on this terminal goes to the target as it is pressed
            (letters, Enter, Backspace, arrows, F-keys, Ctrl and Alt combinations) until Ctrl-]
            leaves. What was sent is echoed. `opts.layout`: the target's layout ("us" default);
            `opts.record = true` returns what was typed as a Macro.
            """,
            body: { call in
                let device = try call.object(1, as: DeviceHandle.self, typeName: DeviceHandle.typeName)
                let options = try call.optionalTable(2)
                var layout = KeyboardLayout.us
                if let name = try options?.string("layout") {
                    guard let named = KeyboardLayout.named(name) else { throw call.argumentError(2, "unknown layout '\(name)'") }
                    layout = named
                }
                let record = try options?.boolean("record") ?? false
                let chosen = layout
                guard isatty(0) != 0, isatty(1) != 0 else {
                    throw NanoKVMError(.unsupported, "dev:live needs a terminal (stdin and stdout)")
                }
                return .await(
                    .async(
                        { () async throws -> MacroHandle? in
                            try await run(device, layout: chosen, record: record).map(MacroHandle.init)
                        },
                        push: { macro, stack in
                            if let macro { LuaRuntime.owning(stack.L)?.push(object: macro, on: stack.L) } else { lua_pushnil(stack.L) }
                            return 1
                        }))
            })
    }

    static func run(_ device: DeviceHandle, layout: KeyboardLayout, record: Bool) async throws -> Macro? {
        let recorder = record ? RecorderHandle(device: device) : nil
        let terminal = try RawTerminal()
        defer { terminal.restore() }
        write("Live keyboard to \(device.client.baseURL): keys go to the target; Ctrl-] leaves.\n")
        let reader = TerminalReader()
        defer { reader.stop() }
        var decoder = TerminalKeyDecoder()
        let hid = device.hid
        reading: for await chunk in reader.chunks {
            let events = chunk.isEmpty ? (decoder.hasPendingEscape ? decoder.flushPendingEscape() : []) : decoder.feed(chunk)
            for event in events {
                switch event {
                case .leave:
                    break reading
                case .text(let text):
                    _ = try await hid.type(text, options: TypingOptions(layout: layout, delay: 0))
                    write(text)
                case .chord(let chord):
                    _ = try await hid.key([chord])
                    write(chord == "Enter" ? "\n" : "<\(chord)>")
                }
            }
        }
        write("\nLive keyboard ended.\n")
        return recorder?.stop()
    }

    static func write(_ text: String) {
        var output = text
        output.withUTF8 { _ = Glibc.write(1, $0.baseAddress, $0.count) }
    }
}

/// The terminal in raw mode (no echo, no line editing, no signals from keys) until restored.
final class RawTerminal: Sendable {
    private let original: termios

    init() throws(NanoKVMError) {
        var settings = termios()
        guard tcgetattr(0, &settings) == 0 else { throw NanoKVMError(.unsupported, "dev:live: cannot read the terminal settings") }
        original = settings
        settings.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        settings.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        withUnsafeMutableBytes(of: &settings.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(0, TCSAFLUSH, &settings) == 0 else { throw NanoKVMError(.unsupported, "dev:live: cannot switch the terminal to raw mode") }
    }

    func restore() {
        var settings = original
        _ = tcsetattr(0, TCSAFLUSH, &settings)
    }
}

/// Reads stdin on a thread of its own (blocking reads stay off Swift's cooperative pool).
/// Yields the bytes read, and an empty chunk every 50 ms of silence (to end a lone ESC).
final class TerminalReader: Sendable {
    let chunks: AsyncStream<[UInt8]>

    init() {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        chunks = stream
        let flag = StopFlag()
        self.flag = flag
        continuation.onTermination = { _ in flag.set() }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(ReaderContext(continuation: continuation, flag: flag)).toOpaque()
        _ = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let context = Unmanaged<ReaderContext>.fromOpaque(raw).takeRetainedValue()
            context.loop()
            return nil
        }, box)
        pthread_detach(thread)
    }

    private let flag: StopFlag

    func stop() { flag.set() }
}

final class StopFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

final class ReaderContext: Sendable {
    let continuation: AsyncStream<[UInt8]>.Continuation
    let flag: StopFlag

    init(continuation: AsyncStream<[UInt8]>.Continuation, flag: StopFlag) {
        self.continuation = continuation
        self.flag = flag
    }

    func loop() {
        var buffer = [UInt8](repeating: 0, count: 1024)
        while !flag.isSet {
            var descriptor = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 50)
            if ready < 0, errno == EINTR { continue }
            if ready <= 0 {
                continuation.yield([])
                continue
            }
            let count = read(0, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }  // end of input
            continuation.yield(Array(buffer[0..<count]))
        }
        continuation.finish()
    }
}
