// openQA needles from Lua: `kvm.needle.load/save`, `needles:tagged`, `dev:find`, `f:match`,
// `dev:wait_screen` (assert_screen) and `dev:click_on` (assert_and_click).

import CLua
import LuaBridge
import NanoKVM

final class NeedleHandle: LuaSendableObject {
    let needle: Needle
    init(_ needle: Needle) { self.needle = needle }
    static let typeName = "kvm.Needle"
}

enum NeedleBindings {
    static let listMetatable = "kvm.NeedleList"

    static let similarityDoc = """
        Similarity (0–100, openQA's scale, compared with each area's `match`, default 96): the area is
        cut into 16×16 tiles; a pixel's error is how far its grey level differs beyond 24 (JPEG
        noise); a tile scores min(1, PSNR/40 dB) and the area its worst tile, so the JPEG noise of
        the same screen scores 100 and one changed word fails. Each needle is located by normalised
        cross-correlation, coarse to fine: first within the first area's `margin` (default 50 px),
        then on the whole screen; `exclude` areas are ignored.
        """

    /// The needles of argument `index`: a Needle or a list of them.
    static func needles(_ call: LuaCall, _ index: Int32) throws -> [Needle] {
        if let one = call.runtime.object(at: index, on: call.L, as: NeedleHandle.self) { return [one.needle] }
        guard call.type(index) == .table else { throw call.argumentError(index - 1, "a Needle or a list of needles expected") }
        let table = LuaTableArgument(call: call, index: index)
        var out: [Needle] = []
        for i in 1...max(table.length, 1) where i <= table.length {
            table.pushElement(i)
            let handle = call.runtime.object(at: -1, on: call.L, as: NeedleHandle.self)
            call.stack.pop()
            guard let handle else { throw call.argumentError(index - 1, "element \(i) of the list is not a Needle") }
            out.append(handle.needle)
        }
        guard !out.isEmpty else { throw call.argumentError(index - 1, "the list of needles is empty") }
        return out
    }

    static func matchData(_ match: NeedleMatch, width: Int, height: Int) -> LuaData {
        let click = match.clickPoint
        return .table(
            [(.string("needle"), .object(NeedleHandle(match.needle))), (.string("name"), .string(match.needle.name)),
             (.string("similarity"), .number((match.similarity * 100).rounded() / 100))]
                + VisionBindings.fractions(match.rect, width, height)
                + [(.string("click_x"), .number(click.x / Double(max(width, 1)))), (.string("click_y"), .number(click.y / Double(max(height, 1))))])
    }

    static func notFound(_ best: [NeedleMatch]) -> String {
        "no needle matched: " + best.map { m in
            "\(m.needle.name) best \(Int(m.similarity.rounded(.down)))%" + (m.note.map { " (\($0))" } ?? "")
        }.joined(separator: "; ")
    }

    static func frameMethods() -> [LuaFunctionSpec] {
        var b = MethodBuilder<FrameHandle>(typeName: FrameHandle.typeName, prefix: "f:")
        b.add(
            "match", args: "needles", returns: "table or nil, msg",
            "Searches the needle (or the first of a list that matches) in this frame: `{needle=, name=, similarity=, x=, y=, w=, h=, x_px=, ..., click_x=, click_y=}` (the first match area where found, fractions), or `nil` and a message with each needle's best similarity. \(similarityDoc)"
        ) { call, f in
            let list = try needles(call, 2)
            let frame = f.frame
            return .await(
                .async { () async throws -> [LuaData] in
                    let found = try FrameSource.search(list, in: frame)
                    if let match = found.match { return [matchData(match, width: frame.width, height: frame.height)] }
                    return [.null, .string(notFound(found.best))]
                })
        }
        return b.specs
    }

    static func deviceMethods() -> [LuaFunctionSpec] {
        var b = MethodBuilder<DeviceHandle>(typeName: DeviceHandle.typeName, prefix: "dev:")
        b.add(
            "find", args: "needles", returns: "table or nil, msg",
            "Searches the needle or list of needles in the next frame (no waiting), like `f:match`."
        ) { call, d in
            let list = try needles(call, 2)
            let source = d.client.frames
            return .await(
                .async { () async throws -> [LuaData] in
                    let frame = try await source.screenshot()
                    let found = try FrameSource.search(list, in: frame)
                    if let match = found.match { return [matchData(match, width: frame.width, height: frame.height)] }
                    return [.null, .string(notFound(found.best))]
                })
        }
        b.add(
            "wait_screen", args: "needles [, opts]", returns: "table", options: ["timeout"],
            """
            openQA's assert_screen: waits until one of `needles` (a Needle or a list) matches a frame
            and returns the match as `f:match` does, with `frame=`. Every new frame is searched (a
            search takes milliseconds). `opts.timeout` (default 30 s) raises `timeout` naming each
            needle's best similarity seen.
            """
        ) { call, d in
            let list = try needles(call, 2)
            let timeout = try timeoutOption(call, 3)
            let source = d.client.frames
            let name = d.name
            return .await(
                .async { () async throws -> [LuaData] in
                    let (match, frame) = try await source.waitNeedles(list, timeout: ScreenBindings.seconds(timeout))
                    guard case .table(var fields) = matchData(match, width: frame.width, height: frame.height) else { return [] }
                    fields.append((.string("frame"), .object(FrameHandle(frame, deviceName: name))))
                    return [.table(fields)]
                })
        }
        b.add(
            "click_on", args: "needles [, opts]", returns: "table", options: ["timeout", "button"],
            """
            openQA's assert_and_click: `dev:wait_screen(needles, opts)`, then clicks the needle's
            click point (else the centre of its first match area) with `opts.button` (default
            "left"); returns the match. `opts.timeout` as for `wait_screen`.
            """
        ) { call, d in
            let list = try needles(call, 2)
            let timeout = try timeoutOption(call, 3)
            let button = try call.options(3)?.string("button") ?? "left"
            guard let mouseButton = MouseButton(rawValue: button) else {
                throw call.argumentError(3, "field 'button' must be \"left\", \"right\", \"middle\", \"back\" or \"forward\"")
            }
            let source = d.client.frames
            let hid = d.hid
            return .await(
                .async { () async throws -> [LuaData] in
                    let (match, frame) = try await source.waitNeedles(list, timeout: ScreenBindings.seconds(timeout))
                    let point = match.clickPoint
                    _ = try await hid.click(mouseButton, x: min(max(point.x / Double(frame.width), 0), 1), y: min(max(point.y / Double(frame.height), 0), 1))
                    return [matchData(match, width: frame.width, height: frame.height)]
                })
        }
        return b.specs
    }

    static func timeoutOption(_ call: LuaCall, _ index: Int32) throws -> Double {
        let timeout = try call.options(index)?.number("timeout") ?? 30
        guard timeout > 0, timeout.isFinite else { throw call.argumentError(index, "field 'timeout' must be > 0") }
        return timeout
    }

    static var moduleFunctions: [LuaFunctionSpec] { [
        LuaFunctionSpec(
            "kvm.needle.load", signature: "kvm.needle.load(path)", returns: "Needle or list",
            """
            Loads an openQA needle: `path` is `name.json` (or `name`, or `name.png`) of a `.json` +
            `.png` pair, or a directory, whose needles (recursively) come back as a list with
            `list:tagged(tag)`. A Needle has fields `name`, `path`, `tags`, `width`, `height`,
            `areas` (`{x_px=, y_px=, w_px=, h_px=, type=, match=, margin=}`). Malformed JSON, a
            missing PNG or one whose size does not fit the areas raise `usage` naming the file.
            """, body: { call in
                let path = try call.string(1)
                let loaded = try Needle.load(path)
                if !path.hasSuffix(".json"), !path.hasSuffix(".png"), loaded.count != 1 || isDirectory(path) {
                    pushList(loaded, call)
                    return .values(1)
                }
                guard let first = loaded.first else { return .values(0) }  // safe: a file gives one needle
                return call.returning(object: NeedleHandle(first))
            }),
        LuaFunctionSpec(
            "kvm.needle.save", signature: "kvm.needle.save(frame, path, {areas=, tags=, properties=})", returns: "Needle",
            options: ["areas", "tags", "properties"],
            """
            Writes `path.json` + `path.png` in openQA's format from `frame` (e.g. `dev:screenshot()`)
            and returns the Needle. `areas`: a list of `{x=, y=, w=, h=}` (fractions) or `{xpos=,
            ypos=, width=, height=}` (pixels), each with optional `type` ("match" default, "ocr",
            "exclude"), `match` (percent, default 96), `margin` (px, default 50), `click_point`
            ("center" or `{xpos=, ypos=}` px inside the area); `tags`: a list of strings.
            """, body: { call in
                let frame = try call.object(1, as: FrameHandle.self, typeName: FrameHandle.typeName).frame
                let path = try call.string(2)
                let options = try call.requireOptions(3)
                var areas: [NeedleArea] = []
                var tags: [String] = []
                let stack = call.stack
                if stack.rawField(3, "areas") == .table {
                    let list = LuaTableArgument(call: call, index: lua_gettop(call.L))
                    for i in 1...max(list.length, 1) where i <= list.length {
                        guard list.pushElement(i) == .table else {
                            stack.pop()
                            throw call.argumentError(3, "areas[\(i)] must be a table")
                        }
                        defer { stack.pop() }
                        areas.append(try readArea(LuaTableArgument(call: call, index: lua_gettop(call.L)), call, i, frame))
                    }
                }
                stack.pop()
                if stack.rawField(3, "tags") == .table {
                    let list = LuaTableArgument(call: call, index: lua_gettop(call.L))
                    for i in 1...max(list.length, 1) where i <= list.length {
                        list.pushElement(i)
                        defer { stack.pop() }
                        guard let tag = stack.string(at: -1), call.type(-1) == .string else { throw call.argumentError(3, "tags[\(i)] must be a string") }
                        tags.append(tag)
                    }
                }
                stack.pop()
                _ = options
                guard !areas.isEmpty else { throw call.argumentError(3, "field 'areas' must list at least one area") }
                let base = path.hasSuffix(".json") ? String(path.dropLast(5)) : path.hasSuffix(".png") ? String(path.dropLast(4)) : path
                try Sandbox.checkWrite(base + ".json")
                try Sandbox.checkWrite(base + ".png")
                return call.returning(object: NeedleHandle(try Needle.save(frame, to: base, areas: areas, tags: tags)))
            }),
    ] }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func readArea(_ t: LuaTableArgument, _ call: LuaCall, _ i: Int, _ frame: Frame) throws -> NeedleArea {
        let rect: PixelRect
        if let x = try t.number("xpos") {
            guard let y = try t.number("ypos"), let w = try t.number("width"), let h = try t.number("height") else {
                throw call.argumentError(3, "areas[\(i)] needs xpos, ypos, width and height")
            }
            rect = PixelRect(x: Int(x.rounded()), y: Int(y.rounded()), width: Int(w.rounded()), height: Int(h.rounded()))
        } else {
            guard let x = try t.number("x"), let y = try t.number("y"), let w = try t.number("w"), let h = try t.number("h") else {
                throw call.argumentError(3, "areas[\(i)] needs x, y, w, h (fractions) or xpos, ypos, width, height (pixels)")
            }
            let p = try ScreenArea(x: x, y: y, width: w, height: h).pixelRect(imageWidth: frame.width, imageHeight: frame.height)
            rect = PixelRect(x: p.x, y: p.y, width: p.width, height: p.height)
        }
        let typeName = try t.string("type") ?? "match"
        guard let kind = NeedleArea.Kind(rawValue: typeName) else { throw call.argumentError(3, "areas[\(i)].type must be \"match\", \"ocr\" or \"exclude\"") }
        var area = NeedleArea(rect: rect, kind: kind, match: try t.number("match") ?? 96, margin: Int(try t.integer("margin") ?? 50))
        let stack = call.stack
        switch stack.rawField(t.index, "click_point") {
        case .nil: break
        case .string where stack.string(at: -1) == "center": area.clickCenter = true
        case .table:
            let point = LuaTableArgument(call: call, index: lua_gettop(call.L))
            guard let x = try point.number("xpos"), let y = try point.number("ypos") else {
                stack.pop()
                throw call.argumentError(3, "areas[\(i)].click_point must be \"center\" or {xpos=, ypos=}")
            }
            area.clickPoint = (x, y)
        default:
            stack.pop()
            throw call.argumentError(3, "areas[\(i)].click_point must be \"center\" or {xpos=, ypos=}")
        }
        stack.pop()
        return area
    }

    static func pushList(_ needles: [Needle], _ call: LuaCall) {
        let L = call.L
        lua_createtable(L, Int32(needles.count), 0)
        for (i, needle) in needles.enumerated() {
            call.runtime.push(object: NeedleHandle(needle), on: L)
            lua_rawseti(L, -2, lua_Integer(i + 1))
        }
        kvm_luaL_getmetatable(L, listMetatable)
        lua_setmetatable(L, -2)
    }

    static var taggedSpec: LuaFunctionSpec { LuaFunctionSpec(
        "needles:tagged", signature: "needles:tagged(tag)", returns: "list",
        "The needles of a list (from `kvm.needle.load` of a directory) that carry `tag`, as a list of the same kind.",
        body: { call in
            guard call.type(1) == .table else { throw call.argumentError(0, "a list of needles expected") }
            let tag = try call.string(2)
            let list = LuaTableArgument(call: call, index: 1)
            var out: [Needle] = []
            for i in 1...max(list.length, 1) where i <= list.length {
                list.pushElement(i)
                if let handle = call.runtime.object(at: -1, on: call.L, as: NeedleHandle.self), handle.needle.tags.contains(tag) { out.append(handle.needle) }
                call.stack.pop()
            }
            pushList(out, call)
            return .values(1)
        }) }

    static func register(in runtime: LuaRuntime) {
        runtime.registerType(
            NeedleHandle.self, name: NeedleHandle.typeName, methods: [],
            properties: [
                "name": { n, stack in stack.push(.string(n.needle.name)) },
                "path": { n, stack in stack.push(.string(n.needle.path)) },
                "width": { n, stack in stack.push(.int(n.needle.width)) },
                "height": { n, stack in stack.push(.int(n.needle.height)) },
                "tags": { n, stack in stack.push(.array(n.needle.tags.map { .string($0) })) },
                "areas": { n, stack in
                    stack.push(.array(n.needle.areas.map { a in
                        .fields(["x_px": .int(a.rect.x), "y_px": .int(a.rect.y), "w_px": .int(a.rect.width), "h_px": .int(a.rect.height),
                                 "type": .string(a.kind.rawValue), "match": .number(a.match), "margin": .int(a.margin)])
                    }))
                },
            ],
            tostring: { "kvm.Needle \($0.needle.name) (\($0.needle.width)x\($0.needle.height), tags: \($0.needle.tags.joined(separator: ", ")))" })
    }

    /// `kvm.needle` (and the list metatable with `tagged`).
    static func pushModule(in runtime: LuaRuntime) {
        let L = runtime.L
        _ = luaL_newmetatable(L, listMetatable)
        lua_createtable(L, 0, 1)
        runtime.push(function: taggedSpec)
        LuaStack(L).setRawField(-2, "tagged")
        LuaStack(L).setRawField(-2, "__index")
        kvm_lua_pop(L, 1)
        lua_createtable(L, 0, 2)
        runtime.register(moduleFunctions, inTableAt: lua_gettop(L))
    }
}

#if canImport(Glibc)
import Glibc
#endif
