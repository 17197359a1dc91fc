import CLua
import LuaBridge
import NanoKVM

/// Keyboard and mouse methods of the Device (../shared/lua-api.md, "Keyboard", "Mouse"): thin
/// wrappers around the client's `HIDController`, which owns the WebSocket, the timing and
/// the releasing.
enum InputBindings {
    /// Runs a keyboard/mouse call as an operation; `cleanup` calls (releases) still run in a
    /// task that was cancelled, so `hold` and error paths never leave a key down.
    static func run(_ device: DeviceHandle, cleanup: Bool = false, _ work: @escaping @Sendable (HIDController) async throws -> Void) -> LuaReturn {
        let hid = device.hid
        let awaitable = LuaAwaitable.async { () async throws -> [LuaData] in
            try await work(hid)
            return []
        }
        return .await(cleanup ? awaitable.asCleanup : awaitable)
    }

    static func button(_ call: LuaCall, _ index: Int32) throws -> MouseButton {
        guard let name = try call.optionalString(index) else { return .left }
        do { return try MouseButton(name: name) } catch {
            throw call.argumentError(index, "unknown mouse button '\(name)' (left, right, middle, back, forward)")
        }
    }

    static func fraction(_ call: LuaCall, _ index: Int32) throws -> Double {
        let value = try call.number(index)
        guard value >= 0, value <= 1 else { throw call.argumentError(index, "a screen position is a fraction 0..1, got \(value)") }
        return value
    }

    /// Optional `x, y` after a button: both or neither.
    static func optionalPosition(_ call: LuaCall, _ index: Int32) throws -> (x: Double, y: Double)? {
        if call.isNoneOrNil(index), call.isNoneOrNil(index + 1) { return nil }
        return (try fraction(call, index), try fraction(call, index + 1))
    }

    static func chordCheck(_ call: LuaCall, _ index: Int32) throws -> String {
        let spec = try call.string(index)
        if let problem = KeyChord.problem(in: spec) { throw call.argumentError(index, problem) }
        return spec
    }

    static func methods() -> [LuaFunctionSpec] {
        var b = MethodBuilder<DeviceHandle>(typeName: DeviceHandle.typeName, prefix: "dev:")
        b.add(
            "type", args: "text [, opts]", options: ["layout", "delay", "secret"],
            """
            Types `text` key by key over the keyboard WebSocket: `\\n` is Enter, `\\t` Tab.
            `opts.layout`: the target's keyboard layout, any XKB `layout(variant)` name
            (`"ch(fr)"`, `"gb"`, `"de(nodeadkeys)"`; `kvm.layouts()` lists them; `"us"`, `"uk"`,
            `"de"`, `"fr"` also work without libxkbcommon), default `dev.layout`; AltGr, the ISO
            key and dead keys are handled, and a level 3 on an ordinary key (neo's Mod3, held with
            the key; firmware 2.3.1 and older cannot send that and raise `unsupported`).
            `opts.delay`: seconds between keys (default 0.01), `opts.secret = true`: the text is
            never logged, recorded or kept in history. A character the layout cannot type raises
            `usage` before anything is sent, naming common layouts that could type it.
            """
        ) { call, d in
            let text = try call.string(2)
            let options = try call.options(3)
            var typing = TypingOptions()
            typing.layout = try LayoutBindings.layout(call, options: options, index: 3, device: d)
            if let delay = try options?.number("delay") {
                guard delay >= 0, delay <= 10 else { throw call.argumentError(3, "field 'delay' must be 0..10 seconds") }
                typing.delay = delay
            }
            if try options?.boolean("secret") == true {
                typing.secret = true
                Secrets.register(text)
            }
            let chosen = typing
            return run(d) { hid in _ = try await hid.type(text, options: chosen) }
        }
        b.add(
            "key", args: "spec, ...",
            """
            Presses and releases each chord in order: `"enter"`, `"ctrl+alt+delete"`, `"shift+F10"`,
            `"KeyA"`. Names are KeyboardEvent.code values (any case) and aliases (ctrl, alt, shift,
            meta/win/super, enter/return, esc, del, bksp, space, tab, up, down, ...); modifiers are
            released in reverse order. An unknown name raises `usage` before anything is sent.
            """
        ) { call, d in
            guard call.count >= 2 else { throw call.typeError(2, expected: "string") }
            var specs: [String] = []
            for index in 2...call.count { specs.append(try chordCheck(call, index)) }
            let chosen = specs
            return run(d) { hid in _ = try await hid.key(chosen) }
        }
        b.add("key_down", args: "spec", "Holds a chord down (until `key_up` or `release_all`).") { call, d in
            let spec = try chordCheck(call, 2)
            return run(d) { hid in _ = try await hid.keyDown(spec) }
        }
        b.add("key_up", args: "spec", "Releases a chord held with `key_down`.") { call, d in
            let spec = try chordCheck(call, 2)
            return run(d, cleanup: true) { hid in _ = try await hid.keyUp(spec) }
        }
        b.add("release_all", "Releases every key and mouse button (an all-up keyboard report and a no-buttons mouse report).") { _, d in
            run(d, cleanup: true) { hid in _ = try await hid.releaseAll() }
        }
        b.add("move", args: "x, y", "Moves the pointer to `x, y`, fractions 0..1 of the screen (absolute).") { call, d in
            let x = try fraction(call, 2)
            let y = try fraction(call, 3)
            return run(d) { hid in _ = try await hid.move(x: x, y: y) }
        }
        b.add(
            "move_px", args: "x, y",
            "Moves the pointer to pixel `x, y` of the current screen resolution (read from the video stream)."
        ) { call, d in
            let x = try call.number(2)
            let y = try call.number(3)
            guard x >= 0, y >= 0, x.isFinite, y.isFinite else { throw call.argumentError(x >= 0 ? 3 : 2, "pixel coordinates must be >= 0") }
            let frames = d.client.frames
            return run(d) { hid in
                let size: (Int, Int)
                if let latest = frames.latest { size = (latest.width, latest.height) } else {
                    let frame = try await frames.screenshot()
                    size = (frame.width, frame.height)
                }
                _ = try await hid.movePixels(x: x, y: y, width: size.0, height: size.1)
            }
        }
        b.add(
            "move_by", args: "dx, dy",
            "Moves the pointer relatively by `dx, dy` device units (the device takes -127..127 per report; larger moves are split)."
        ) { call, d in
            let dx = Int(try call.integer(2))
            let dy = Int(try call.integer(3))
            return run(d) { hid in _ = try await hid.moveBy(dx: dx, dy: dy) }
        }
        b.add(
            "click", args: "[button [, x, y]]",
            "Clicks `button` (\"left\" default, \"right\", \"middle\", \"back\", \"forward\"), first moving to `x, y` (fractions) when given."
        ) { call, d in
            let button = try button(call, 2)
            let position = try optionalPosition(call, 3)
            return run(d) { hid in _ = try await hid.click(button, x: position?.x, y: position?.y) }
        }
        b.add("double_click", args: "[button [, x, y]]", "Double-clicks, like `click`.") { call, d in
            let button = try button(call, 2)
            let position = try optionalPosition(call, 3)
            return run(d) { hid in _ = try await hid.doubleClick(button, x: position?.x, y: position?.y) }
        }
        b.add("mouse_down", args: "[button]", "Holds a mouse button down.") { call, d in
            let button = try button(call, 2)
            return run(d) { hid in _ = try await hid.mouseDown(button) }
        }
        b.add("mouse_up", args: "[button]", "Releases a mouse button.") { call, d in
            let button = try button(call, 2)
            return run(d, cleanup: true) { hid in _ = try await hid.mouseUp(button) }
        }
        b.add(
            "drag", args: "x1, y1, x2, y2 [, opts]", options: ["button", "steps", "step_interval"],
            "Presses at `x1, y1`, moves to `x2, y2` in steps and releases there (fractions; `opts.button` default \"left\", `opts.steps` default 10, `opts.step_interval` seconds, default 0.02)."
        ) { call, d in
            let x1 = try fraction(call, 2)
            let y1 = try fraction(call, 3)
            let x2 = try fraction(call, 4)
            let y2 = try fraction(call, 5)
            var drag = DragOptions()
            if let options = try call.options(6) {
                if let name = try options.string("button") {
                    do { drag.button = try MouseButton(name: name) } catch {
                        throw call.argumentError(6, "unknown mouse button '\(name)'")
                    }
                }
                if let steps = try options.integer("steps") {
                    guard (1...1000).contains(steps) else { throw call.argumentError(6, "field 'steps' must be 1..1000") }
                    drag.steps = Int(steps)
                }
                if let interval = try options.number("step_interval") {
                    guard interval >= 0, interval <= 5 else { throw call.argumentError(6, "field 'step_interval' must be 0..5") }
                    drag.stepInterval = interval
                }
            }
            let chosen = drag
            return run(d) { hid in _ = try await hid.drag(fromX: x1, fromY: y1, toX: x2, toY: y2, options: chosen) }
        }
        b.add(
            "scroll", args: "dy [, dx]",
            "Turns the wheel `dy` notches: positive scrolls down (towards the user), negative up; `dx` scrolls sideways (Shift+wheel)."
        ) { call, d in
            let dy = Int(try call.integer(2))
            let dx = Int(try call.optionalInteger(3) ?? 0)
            guard abs(dy) <= 10_000, abs(dx) <= 10_000 else { throw call.argumentError(2, "at most 10000 notches") }
            return run(d) { hid in _ = try await hid.scroll(dy: dy, dx: dx) }
        }
        return b.specs
    }

    /// `dev:hold(spec, fn)`, written in Lua on top of key_down/key_up (key_up is a cleanup
    /// call, so it runs even when the task holding the key is being cancelled).
    static let luaPrelude = #"""
        local methods = ...
        local pcall, error = pcall, error
        local key_down, key_up = methods.key_down, methods.key_up
        methods.hold = function(dev, spec, fn, ...)
          if type(fn) ~= "function" then
            error(kvm._usage("bad argument #2 to 'dev:hold' (function expected, got " .. type(fn) .. ")"), 2)
          end
          key_down(dev, spec)
          local results = table.pack(pcall(fn, ...))
          key_up(dev, spec)
          if not results[1] then error(results[2], 0) end
          return table.unpack(results, 2, results.n)
        end
        """#

    static func installLuaParts(in runtime: LuaRuntime) throws(LuaRuntimeError) {
        try DeviceLuaMethods.install(
            luaPrelude, chunkName: "kvm.hold", in: runtime,
            documenting: [
                LuaFunctionSpec(
                    "dev:hold", signature: "dev:hold(spec, fn, ...)", returns: "results of fn",
                    "Holds the chord `spec` down while `fn(...)` runs and always releases it, also when `fn` raises an error or the task is cancelled.",
                    body: nil)
            ])
    }
}
