import CLua
import LuaBridge
import NanoKVM

#if canImport(Glibc)
    import Glibc
#endif

/// The Lua `Frame`: one picture of the screen (../shared/lua-api.md, "Screen").
final class FrameHandle: LuaSendableObject {
    let frame: Frame
    /// `dev.name` of the device it came from: what `{device}` in `f:save(path)` becomes.
    let deviceName: String?
    init(_ frame: Frame, deviceName: String?) {
        self.frame = frame
        self.deviceName = deviceName
    }
    static let typeName = "kvm.Frame"
}

/// What `dev:frames()` iterates over; closing it (loop end, `break`, collection) ends the
/// subscription so the shared stream can close when nothing else reads it.
final class FrameIteratorHandle: LuaSendableObject {
    let subscription: FrameSubscription
    init(_ subscription: FrameSubscription) { self.subscription = subscription }
    deinit { subscription.close() }
    static let typeName = "kvm.FrameIterator"
}

enum ScreenBindings {
    static func register(in runtime: LuaRuntime) {
        var b = MethodBuilder<FrameHandle>(typeName: FrameHandle.typeName, prefix: "f:")
        b.add(
            "save", args: "path",
            "Saves the frame: `.jpg`/`.jpeg` as received (no re-encoding), `.png` converted; `{device}` in `path` becomes the name of the device it came from."
        ) { call, f in
            let path = try DevicePath.expand(try call.string(2), deviceName: f.deviceName)
            _ = try ImageFileType(path: path)
            try Sandbox.checkWrite(path)
            try f.frame.save(to: path)
            return .none
        }
        b.add("jpeg", returns: "string", "The JPEG bytes (as received, or encoded for a cropped frame).") { call, f in
            call.returning(.bytes(try f.frame.jpeg()))
        }
        b.add("pixel", args: "x_px, y_px", returns: "r, g, b", "The colour of one pixel (0-based pixel coordinates; decodes the frame once).") { call, f in
            let x = try call.integer(2)
            let y = try call.integer(3)
            guard x >= 0, y >= 0, x < f.frame.width, y < f.frame.height else {
                throw call.argumentError(x < 0 || x >= f.frame.width ? 2 : 3, "pixel (\(x), \(y)) is outside the \(f.frame.width)x\(f.frame.height) frame")
            }
            let (r, g, b) = try f.frame.pixel(x: Int(x), y: Int(y))
            return call.returning(.int(Int(r)), .int(Int(g)), .int(Int(b)))
        }
        b.add("crop", args: "x, y, w, h", returns: "Frame", "The part of the frame at `x, y` (fractions of the width and height) of size `w, h` (fractions).") { call, f in
            let area = try ScreenArea(x: try call.number(2), y: try call.number(3), width: try call.number(4), height: try call.number(5))
            return call.returning(object: FrameHandle(try f.frame.crop(area), deviceName: f.deviceName))
        }
        b.add(
            "diff", args: "other [, area]", returns: "number",
            "Fraction (0..1) of the pixels that differ between two frames, over `area` (`{x=, y=, w=, h=}` fractions, or `{x, y, w, h}`), ignoring JPEG noise; 1 when the sizes differ."
        ) { call, f in
            let other = try call.object(2, as: FrameHandle.self, typeName: FrameHandle.typeName)
            let area = try readArea(call, tableIndex: 2, field: nil, argument: 3) ?? .full
            return call.returning(.number(try f.frame.diff(other.frame, area: area)))
        }
        runtime.registerType(
            FrameHandle.self, name: FrameHandle.typeName, methods: b.specs + VisionBindings.frameMethods() + NeedleBindings.frameMethods(),
            properties: [
                "width": { f, stack in stack.push(.int(f.frame.width)) },
                "height": { f, stack in stack.push(.int(f.frame.height)) },
                "time": { f, stack in stack.push(.number(f.frame.time)) },
                "size": { f, stack in stack.push(.int(f.frame.size)) },
            ],
            tostring: { "kvm.Frame \($0.frame.width)x\($0.frame.height) (\($0.frame.size) bytes)" })
        runtime.registerType(FrameIteratorHandle.self, name: FrameIteratorHandle.typeName, methods: [])
        addCloseMetamethod(in: runtime)
    }

    /// `__close` on the iterator's metatable (Lua 5.4 closes the fourth value of a generic
    /// `for` when the loop ends, also by `break` or an error).
    static func addCloseMetamethod(in runtime: LuaRuntime) {
        let L = runtime.L
        kvm_luaL_getmetatable(L, FrameIteratorHandle.typeName)
        runtime.push(
            function: LuaFunctionSpec("kvm.FrameIterator.__close", "", body: { call in
                call.runtime.object(at: 1, on: call.L, as: FrameIteratorHandle.self)?.subscription.close()
                return .none
            }), documented: false)
        LuaStack(L).setRawField(-2, "__close")
        kvm_lua_pop(L, 1)
    }

    /// An area argument: `{x=, y=, w=, h=}` or `{x, y, w, h}` (fractions), from the table at
    /// `argument` or from its field `field` (opts.area). Nil when absent.
    static func readArea(_ call: LuaCall, tableIndex: Int32, field: String?, argument: Int32) throws -> ScreenArea? {
        let L = call.L
        let stack = call.stack
        var pushed = false
        if let field {
            guard call.type(argument) == .table else { return nil }
            if stack.rawField(argument, field) == .nil {
                stack.pop()
                return nil
            }
            pushed = true
        } else {
            if call.isNoneOrNil(argument) { return nil }
            lua_pushvalue(L, argument)
            pushed = true
        }
        defer { if pushed { stack.pop() } }
        guard call.type(-1) == .table else {
            throw call.argumentError(argument, "\(field.map { "field '\($0)'" } ?? "area") must be a table {x=, y=, w=, h=}")
        }
        let table = LuaTableArgument(call: call, index: -1)
        func value(_ name: String, _ position: Int) throws -> Double {
            if let named = try table.number(name) { return named }
            let type = table.pushElement(position)
            defer { stack.pop() }
            guard type == .number else {
                throw call.argumentError(argument, "area needs x, y, w and h (fractions 0..1)")
            }
            return lua_tonumberx(L, -1, nil)
        }
        return try ScreenArea(x: try value("x", 1), y: try value("y", 2), width: try value("w", 3), height: try value("h", 4))
    }

    static func pushFrame(_ frame: Frame?, of device: DeviceHandle, _ stack: LuaStack) -> Int32 {
        guard let frame else {
            lua_pushnil(stack.L)
            return 1
        }
        LuaRuntime.owning(stack.L)?.push(object: FrameHandle(frame, deviceName: device.name), on: stack.L)
        return 1
    }

    static func seconds(_ value: Double) -> Duration { .milliseconds(Int64((value * 1000).rounded())) }

    // MARK: Device methods

    static func deviceMethods() -> [LuaFunctionSpec] {
        var b = MethodBuilder<DeviceHandle>(typeName: DeviceHandle.typeName, prefix: "dev:")
        b.add(
            "screenshot", args: "[path]", returns: "Frame",
            "The next frame of the video stream; saved to `path` when given (`.jpg` as received, `.png` converted; `{device}` in it becomes `dev.name`)."
        ) { call, d in
            let path = try call.optionalString(2).map { path throws(NanoKVMError) in try DevicePath.expand(path, deviceName: d.name) }
            if let path {
                _ = try ImageFileType(path: path)
                try Sandbox.checkWrite(path)
            }
            let frames = d.client.frames
            return .await(
                .async(
                    { () async throws -> Frame in
                        let frame = try await frames.screenshot()
                        if let path { try frame.save(to: path) }
                        return frame
                    }, push: { frame, stack in pushFrame(frame, of: d, stack) }))
        }
        b.add(
            "frames", args: "[opts]", returns: "iterator", options: ["fps", "count"],
            """
            Frames for a generic `for`: `for f in dev:frames{fps=5, count=10} do ... end`. `opts.fps`
            limits the rate, `opts.count` stops after that many; leaving the loop ends the stream.
            """
        ) { call, d in
            let options = try call.options(2)
            let fps = try options?.number("fps")
            let count = try options?.integer("count")
            if let fps, !(fps > 0 && fps.isFinite) { throw call.argumentError(2, "field 'fps' must be > 0") }
            if let count, count < 1 { throw call.argumentError(2, "field 'count' must be >= 1") }
            let subscription = try d.client.frames.subscribe(fps: fps, count: count.map(Int.init))
            let handle = FrameIteratorHandle(subscription)
            call.runtime.push(
                function: LuaFunctionSpec("frames iterator", "", body: { _ in
                    .await(.async({ () async throws -> Frame? in try await subscription.next() }, push: { frame, stack in pushFrame(frame, of: d, stack) }))
                }), on: call.L, documented: false)
            lua_pushnil(call.L)
            lua_pushnil(call.L)
            call.runtime.push(object: handle, on: call.L)
            return .values(4)
        }
        b.add(
            "record", args: "path, opts", returns: "table", options: ["seconds", "frames"],
            """
            Records the stream to `path`: `.avi` (Motion-JPEG, written as received) or `.mp4` (through
            ffmpeg, which must be installed); `{device}` in `path` becomes `dev.name`. `opts.seconds` or `opts.frames` says when to stop.
            Returns `{frames=n, seconds=s, path=...}`. Runs in the background with `kvm.spawn`.
            """
        ) { call, d in
            let path = try DevicePath.expand(try call.string(2), deviceName: d.name)
            _ = try VideoFileType(path: path)
            try Sandbox.checkWrite(path)
            let options = try call.requireOptions(3)
            let seconds = try options.number("seconds")
            let frames = try options.integer("frames")
            guard seconds != nil || frames != nil else { throw call.argumentError(3, "give opts.seconds or opts.frames") }
            if let seconds, !(seconds > 0 && seconds.isFinite) { throw call.argumentError(3, "field 'seconds' must be > 0") }
            if let frames, frames < 1 { throw call.argumentError(3, "field 'frames' must be >= 1") }
            let source = d.client.frames
            return d.run { _ -> LuaDataWrapper in
                let result = try await source.record(to: path, seconds: seconds, frames: frames.map(Int.init))
                return LuaDataWrapper(.fields(["frames": .int(result.frames), "seconds": .number(result.seconds), "path": .string(result.path)]))
            }
        }
        b.add(
            "wait_change", args: "[opts]", returns: "Frame, ignored", options: ["area", "threshold", "timeout", "ignore", "learn"],
            """
            Waits until the screen differs from the frame current at the call and returns the new
            frame. `opts.area` (`{x=, y=, w=, h=}` or `{x, y, w, h}` fractions) limits where to look,
            `opts.threshold` is the fraction of pixels that must change beyond JPEG noise (default
            0.0002: a few typed characters), `opts.timeout` (default 10 s) raises `timeout`.
            `opts.ignore` (a list of areas) never counts; unless `opts.learn = false`, regions that
            keep changing by themselves (a clock, a blinking cursor, a frame counter: 16×16 cells
            that changed three times or more over at least 1 s, at most 3% of the screen — more is
            activity, not a clock —, grown along the text they are part of so a clock's rarer
            digits count too, to at most 3% of the screen or 64 cells) are ignored too, learned
            from the stream's last 3.5 s when it was open (from the last change of the whole screen
            on: frames of another page say nothing about this one), else from the first 2.2 s of
            the wait (a change during those is returned at their end). The second result lists
            the ignored regions (`{x=, y=, w=, h=, learned=bool}` fractions).
            """
        ) { call, d in
            let options = try call.options(2)
            let area = try readArea(call, tableIndex: 2, field: "area", argument: 2) ?? .full
            let threshold = try options?.number("threshold") ?? Frame.defaultChangeThreshold
            let timeout = try options?.number("timeout") ?? 10
            guard timeout > 0, timeout.isFinite else { throw call.argumentError(2, "field 'timeout' must be > 0") }
            let ignore = try VisionBindings.readAreaList(call, argument: 2, field: "ignore")
            let learn = try options?.boolean("learn") ?? true
            let source = d.client.frames
            let name = d.name
            return .await(
                .async { () async throws -> [LuaData] in
                    let result = try await source.waitChangeIgnoring(
                        area: area, threshold: threshold, timeout: seconds(timeout), ignore: ignore, ignoreSelfChanging: learn)
                    return VisionBindings.maskedWaitData(result, deviceName: name)
                })
        }
        b.add(
            "wait_still", args: "[opts]", returns: "Frame, ignored", options: ["seconds", "area", "threshold", "timeout", "ignore", "learn"],
            """
            Waits until the screen has not changed for `opts.seconds` (default 2) and returns the last
            frame (nil when no frame came at all: a still screen with frame detection on).
            `opts.area`, `opts.threshold`, `opts.ignore`, `opts.learn` as for `wait_change` (regions
            that keep changing by themselves do not keep it waiting); `opts.timeout` (default 30 s).
            The second result lists the ignored regions.
            """
        ) { call, d in
            let options = try call.options(2)
            let area = try readArea(call, tableIndex: 2, field: "area", argument: 2) ?? .full
            let threshold = try options?.number("threshold") ?? Frame.defaultChangeThreshold
            let still = try options?.number("seconds") ?? 2
            let timeout = try options?.number("timeout") ?? 30
            guard still > 0, still.isFinite else { throw call.argumentError(2, "field 'seconds' must be > 0") }
            guard timeout > 0, timeout.isFinite else { throw call.argumentError(2, "field 'timeout' must be > 0") }
            let ignore = try VisionBindings.readAreaList(call, argument: 2, field: "ignore")
            let learn = try options?.boolean("learn") ?? true
            let source = d.client.frames
            let name = d.name
            return .await(
                .async { () async throws -> [LuaData] in
                    let result = try await source.waitStillIgnoring(
                        seconds: still, area: area, threshold: threshold, timeout: seconds(timeout), ignore: ignore, ignoreSelfChanging: learn)
                    return VisionBindings.maskedWaitData(result, deviceName: name)
                })
        }
        b.add(
            "show", args: "[opts]", options: ["width", "ocr"],
            "Draws the current screen in the terminal with truecolor half-block characters, `opts.width` columns wide (default: the terminal's width); `opts.ocr = true` prints the text read from it (`dev:ocr`) under the preview."
        ) { call, d in
            let options = try call.options(2)
            let width = try options?.integer("width")
            let reader = try options?.boolean("ocr") == true ? try ScreenTextReader() : nil
            if let width, !(4...1000).contains(width) { throw call.argumentError(2, "field 'width' must be 4..1000") }
            guard isatty(1) != 0 else {
                throw NanoKVMError(.unsupported, "dev:show draws on a terminal and stdout is not one; use dev:screenshot(path)")
            }
            let terminal = TerminalPreview.terminalSize()
            let columns = Int(width ?? Int64(terminal?.columns ?? 80))
            let rows = terminal.map { max(4, $0.rows - 2) }
            let frames = d.client.frames
            return .await(
                .async(
                    { () async throws -> String in
                        let frame = try await frames.screenshot()
                        let preview = try TerminalPreview.render(frame, columns: columns, maxRows: rows)
                        guard let reader else { return preview }
                        let text = try await reader.read(frame).text
                        return (preview.hasSuffix("\n") ? preview : preview + "\n") + text
                    },
                    push: { text, _ in
                        var output = text.hasSuffix("\n") ? text : text + "\n"
                        output.withUTF8 { _ = fwrite($0.baseAddress, 1, $0.count, kvm_stdout()) }
                        fflush(kvm_stdout())
                        return 0
                    }))
        }
        return b.specs + VisionBindings.deviceMethods() + NeedleBindings.deviceMethods()
    }
}
