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
            "dev:live", signature: "dev:live([opts])", returns: "Macro or nil", options: ["layout", "record"],
            """
            REPL only: every key pressed on this terminal goes to the target as it is pressed
            (letters, Enter, Backspace, arrows, F-keys, Ctrl and Alt combinations) until Ctrl-]
            leaves. What was sent is echoed. `opts.layout`: the target's layout (default `dev.layout`, see `dev:type`);
            `opts.record = true` returns what was typed as a Macro.
            """,
            body: { call in
                let device = try call.object(1, as: DeviceHandle.self, typeName: DeviceHandle.typeName)
                let options = try call.options(2)
                let layout = try LayoutBindings.layout(call, options: options, index: 2, device: device)
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
        guard var macro = recorder?.stop() else { return nil }
        // The recording's `type` steps are in this layout (also when nothing was typed but
        // chords): the file says so.
        macro.layout = layout.name
        return macro
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
/// `stop()` wakes the thread through a pipe and waits until it has ended, so no key typed
/// after live mode (at the REPL prompt) is read by it.
final class TerminalReader: Sendable {
    let chunks: AsyncStream<[UInt8]>
    private let flag: StopFlag
    private let wakeWrite: Int32
    /// The reader thread until `stop()` has joined it.
    private let thread: Mutex<pthread_t?>

    init() {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        chunks = stream
        let flag = StopFlag()
        self.flag = flag
        continuation.onTermination = { _ in flag.set() }
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        wakeWrite = fds[1]
        var handle = pthread_t()
        let box = Unmanaged.passRetained(ReaderContext(continuation: continuation, flag: flag, wakeRead: fds[0])).toOpaque()
        let created = pthread_create(&handle, nil, { raw in
            guard let raw else { return nil }
            let context = Unmanaged<ReaderContext>.fromOpaque(raw).takeRetainedValue()
            context.loop()
            return nil
        }, box)
        thread = Mutex(created == 0 ? handle : nil)
        if created != 0 {
            Unmanaged<ReaderContext>.fromOpaque(box).release()
            for fd in fds where fd >= 0 { close(fd) }
            continuation.finish()
        }
    }

    func stop() {
        flag.set()
        if wakeWrite >= 0 {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
        guard let handle = thread.withLock({ current -> pthread_t? in
            defer { current = nil }
            return current
        }) else { return }
        _ = pthread_join(handle, nil)
        if wakeWrite >= 0 { close(wakeWrite) }
    }
}

final class StopFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

final class ReaderContext: Sendable {
    let continuation: AsyncStream<[UInt8]>.Continuation
    let flag: StopFlag
    let wakeRead: Int32

    init(continuation: AsyncStream<[UInt8]>.Continuation, flag: StopFlag, wakeRead: Int32) {
        self.continuation = continuation
        self.flag = flag
        self.wakeRead = wakeRead
    }

    func loop() {
        var buffer = [UInt8](repeating: 0, count: 1024)
        while !flag.isSet {
            var descriptors = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&descriptors, wakeRead >= 0 ? 2 : 1, 50)
            if ready < 0, errno == EINTR { continue }
            // Checked before reading: input that arrives once live mode is over is the REPL's.
            if flag.isSet { break }
            if ready <= 0 || descriptors[0].revents == 0 {
                continuation.yield([])
                continue
            }
            let count = read(0, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }  // end of input
            continuation.yield(Array(buffer[0..<count]))
        }
        if wakeRead >= 0 { close(wakeRead) }
        continuation.finish()
    }
}
