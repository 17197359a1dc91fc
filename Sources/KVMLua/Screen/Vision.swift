// Reading the screen from Lua: OCR (`dev:ocr`, `frame:ocr`), waiting for and clicking text
// (`dev:wait_text`, `dev:find_text`, `dev:click_text`). The waits are a small Lua chunk (so
// `opts.plain = false` gets real Lua patterns) around a Swift waiter that reads one frame per
// call, off the Lua thread, incrementally (NanoKVM/Vision).

import CLua
import LuaBridge
import NanoKVM
import Synchronization

/// The waiter behind `dev:wait_text` and friends (internal: the Lua chunk drives it).
final class TextWaiterHandle: LuaSendableObject {
    let waiter: TextWaiter
    let last = Mutex<(result: OCRResult, frame: Frame)?>(nil)
    /// `dev.name` of the device read, for the frames of the matches.
    let deviceName: String
    init(_ waiter: TextWaiter, deviceName: String) {
        self.waiter = waiter
        self.deviceName = deviceName
    }
    deinit { waiter.close() }
    static let typeName = "kvm.TextWaiter"
}

enum VisionBindings {
    static let ocrOptionsDoc = """
        `opts.area` (`{x=, y=, w=, h=}` or `{x, y, w, h}` fractions) reads only that part,
        `opts.lang` (default "eng"; Tesseract codes, "deu+eng"; each needs its Debian package
        `tesseract-ocr-<lang>`), `opts.mode`: "screen" (default: text anywhere, line by line),
        "block" (one block of text), "line" (a single line), "word" (a single word).
        """

    static let ocrOptionNames = ["area", "lang", "mode"]
    static let findTextOptionNames = ["plain", "ignore_case", "max_errors"] + ocrOptionNames
    static let waitTextOptionNames = findTextOptionNames + ["timeout", "press", "every"]
    static let clickTextOptionNames = waitTextOptionNames + ["button", "offset"]

    /// `opts` of the OCR calls at argument `argument`; `known`: the option names the calling
    /// function accepts (default: its spec's).
    static func ocrOptions(_ call: LuaCall, argument: Int32, known: [String]? = nil) throws -> OCROptions {
        let options = try call.options(argument, known: known)
        let area = try ScreenBindings.readArea(call, tableIndex: argument, field: "area", argument: argument) ?? .full
        let language = try options?.string("lang") ?? "eng"
        var mode = OCRMode.screen
        if let name = try options?.string("mode") {
            guard let known = OCRMode(rawValue: name) else {
                throw call.argumentError(argument, "field 'mode' must be \"screen\", \"block\", \"line\" or \"word\", got \"\(name)\"")
            }
            mode = known
        }
        return OCROptions(area: area, language: language, mode: mode)
    }

    static func fractions(_ rect: PixelRect, _ width: Int, _ height: Int) -> [(key: LuaData, value: LuaData)] {
        let w = Double(max(width, 1)), h = Double(max(height, 1))
        return [
            (.string("x"), .number(Double(rect.x) / w)), (.string("y"), .number(Double(rect.y) / h)),
            (.string("w"), .number(Double(rect.width) / w)), (.string("h"), .number(Double(rect.height) / h)),
            (.string("x_px"), .int(rect.x)), (.string("y_px"), .int(rect.y)),
            (.string("w_px"), .int(rect.width)), (.string("h_px"), .int(rect.height)),
        ]
    }

    static func ocrData(_ result: OCRResult) -> LuaData {
        var words: [LuaData] = []
        for (index, line) in result.lines.enumerated() {
            for word in line.words {
                words.append(
                    .table(
                        [(.string("text"), .string(word.text)), (.string("conf"), .number(word.confidence)), (.string("line"), .int(index + 1))]
                            + fractions(word.rect, result.frameWidth, result.frameHeight)))
            }
        }
        return .fields([
            "text": .string(result.text), "lines": .array(result.lines.map { .string($0.text) }), "words": .array(words),
        ])
    }

    static func readAsync(_ frame: Frame?, source: FrameSource?, options: OCROptions) throws -> LuaReturn {
        let reader = try ScreenTextReader(options: options)
        return .await(
            .async { () async throws -> [LuaData] in
                let chosen: Frame
                if let frame { chosen = frame } else if let source { chosen = try await source.screenshot() } else { return [] }
                return [ocrData(try await reader.read(chosen))]
            })
    }

    /// A list of areas at field `field` of the options table at `argument` (empty when absent).
    static func readAreaList(_ call: LuaCall, argument: Int32, field: String) throws -> [ScreenArea] {
        guard call.type(argument) == .table else { return [] }
        let stack = call.stack
        let type = stack.rawField(argument, field)
        defer { stack.pop() }
        if type == .nil { return [] }
        guard type == .table else { throw call.argumentError(argument, "field '\(field)' must be a list of areas {x=, y=, w=, h=}") }
        let list = LuaTableArgument(call: call, index: lua_gettop(call.L))
        var out: [ScreenArea] = []
        for i in 1...max(list.length, 1) where i <= list.length {
            list.pushElement(i)
            defer { stack.pop() }
            guard let area = try ScreenBindings.readArea(call, tableIndex: lua_gettop(call.L), field: nil, argument: lua_gettop(call.L)) else {
                throw call.argumentError(argument, "field '\(field)' must be a list of areas {x=, y=, w=, h=}")
            }
            out.append(area)
        }
        return out
    }

    static func maskedWaitData(_ result: FrameSource.MaskedWaitResult, deviceName: String) -> [LuaData] {
        let frame: LuaData = result.frame.map { .object(FrameHandle($0, deviceName: deviceName)) } ?? .null
        let width = result.frame?.width ?? 1, height = result.frame?.height ?? 1
        let learned = Set(result.learned)
        let regions: [LuaData] = result.ignored.map { rect in
            .table(Array(fractions(rect, width, height).prefix(4)) + [(.string("learned"), .bool(learned.contains(rect)))])
        }
        return [frame, .array(regions)]
    }

    static func frameMethods() -> [LuaFunctionSpec] {
        var b = MethodBuilder<FrameHandle>(typeName: FrameHandle.typeName, prefix: "f:")
        b.add(
            "ocr", args: "[opts]", returns: "table", options: ocrOptionNames,
            """
            Reads the text of the frame (Tesseract, off the Lua thread): `{text=, lines={...},
            words={{text=, conf=, line=, x=, y=, w=, h=, x_px=, y_px=, w_px=, h_px=}, ...}}`, boxes
            as fractions of the frame plus pixels. \(ocrOptionsDoc)
            """
        ) { call, f in try readAsync(f.frame, source: nil, options: try ocrOptions(call, argument: 2)) }
        return b.specs
    }

    static let waitOptionsDoc = """
        `opts.plain` (default true: `pattern` is a plain substring; false: a Lua pattern),
        `opts.ignore_case` (default true), `opts.max_errors` (default 0; plain patterns only: the
        text may differ from `pattern` in that many characters, misread, missing or extra, as OCR
        confuses m and n or [ and C; an exact match anywhere wins, else the closest on the first
        line that has one, and `text` is what was read there), `opts.area`, `opts.lang` and
        `opts.mode` as for
        `dev:ocr`, `opts.timeout` (default 30 s), `opts.press` (a key such as "delete") pressed
        every `opts.every` seconds (default 0.2) while waiting.
        """

    static func deviceMethods() -> [LuaFunctionSpec] {
        var b = MethodBuilder<DeviceHandle>(typeName: DeviceHandle.typeName, prefix: "dev:")
        b.add(
            "ocr", args: "[opts]", returns: "table", options: ocrOptionNames,
            "Reads the text of the next frame; like `f:ocr`. \(ocrOptionsDoc)"
        ) { call, d in try readAsync(nil, source: d.client.frames, options: try ocrOptions(call, argument: 2)) }
        // dev:_text_waiter(pattern, opts, name): the Swift half of wait_text/find_text/click_text;
        // `name` is the public function's: the options it takes, one frame (find_text) or a
        // wait, and the function errors name.
        b.append(
            LuaFunctionSpec("kvm._text_waiter", "", body: { call in
                let name = (try? call.string(4)) ?? "dev:wait_text"
                do {
                    return try textWaiter(call, name: name)
                } catch let error as LuaUsageError {
                    // Options are the public function's argument #2, not this helper's #3.
                    let helper = "bad argument #3 to '\(call.spec.name)'"
                    guard error.message.hasPrefix(helper) else { throw error }
                    throw LuaUsageError("bad argument #2 to '\(name)'" + error.message.dropFirst(helper.count))
                }
            }))
        return b.specs
    }

    static func textWaiter(_ call: LuaCall, name: String) throws -> LuaReturn {
        let d = try call.object(1, as: DeviceHandle.self, typeName: DeviceHandle.typeName)
        let pattern = try call.string(2)
        // The Lua halves pass their caller's options through (click_text reads button
        // and offset itself).
        let known = name == "dev:find_text" ? findTextOptionNames : name == "dev:click_text" ? clickTextOptionNames : waitTextOptionNames
        let options = try call.options(3, known: known)
        let ocr = try ocrOptions(call, argument: 3, known: known)
        let timeout = try options?.number("timeout") ?? 30
        guard timeout > 0, timeout.isFinite else { throw call.argumentError(3, "field 'timeout' must be > 0") }
        let every = try options?.number("every") ?? 0.2
        guard every > 0, every.isFinite else { throw call.argumentError(3, "field 'every' must be > 0") }
        let plain = try options?.boolean("plain") ?? true
        _ = try options?.boolean("ignore_case")
        if let errors = try options?.integer("max_errors") {
            guard errors >= 0, errors < pattern.count else {
                throw call.argumentError(3, "field 'max_errors' must be 0 or more and less than the pattern's length (\(pattern.count)), got \(errors)")
            }
            guard plain || errors == 0 else { throw call.argumentError(3, "field 'max_errors' needs a plain pattern (opts.plain = false was given)") }
        }
        var press: (@Sendable () async throws(NanoKVMError) -> Void)?
        if let key = try options?.string("press") {
            if let problem = KeyChord.problem(in: key) { throw call.argumentError(3, "field 'press': \(problem)") }
            let hid = d.hid
            press = { () async throws(NanoKVMError) in _ = try await hid.key([key]) }
        }
        let reader = try ScreenTextReader(options: ocr)
        let waiter = try TextWaiter(
            source: d.client.frames, reader: reader, timeout: name == "dev:find_text" ? nil : timeout, wanted: "'\(pattern)'", press: press, every: every)
        return call.returning(object: TextWaiterHandle(waiter, deviceName: d.name))
    }

    static func register(in runtime: LuaRuntime) {
        var b = MethodBuilder<TextWaiterHandle>(typeName: TextWaiterHandle.typeName, prefix: "waiter:")
        b.append(
            LuaFunctionSpec("kvm._waiter:next", "", body: { call in
                let handle = try call.object(1, as: TextWaiterHandle.self, typeName: TextWaiterHandle.typeName)
                return .await(
                    .async { () async throws -> [LuaData] in
                        guard let pass = try await handle.waiter.next() else { return [.null] }
                        handle.last.withLock { $0 = pass }
                        return [.array(pass.result.lines.map { .string($0.text) })]
                    })
            }))
        // waiter:match(line, first, last): the match table for bytes first..last (1-based) of line.
        b.append(
            LuaFunctionSpec("kvm._waiter:match", "", body: { call in
                let handle = try call.object(1, as: TextWaiterHandle.self, typeName: TextWaiterHandle.typeName)
                let index = Int(try call.integer(2)) - 1
                let first = Int(try call.integer(3)) - 1
                let last = Int(try call.integer(4))
                guard let pass = handle.last.withLock({ $0 }), pass.result.lines.indices.contains(index) else { return .values(0) }
                let line = pass.result.lines[index]
                let bytes = Array(line.text.utf8)
                let range = max(first, 0)..<min(max(last, first + 1), bytes.count)
                let rect = line.box(ofBytes: range) ?? line.rect
                let text = String(decoding: bytes[range], as: UTF8.self)
                let fields: [(key: LuaData, value: LuaData)] =
                    [(.string("text"), .string(text)), (.string("line"), .string(line.text))]
                    + fractions(rect, pass.result.frameWidth, pass.result.frameHeight)
                    + [(.string("frame"), .object(FrameHandle(pass.frame, deviceName: handle.deviceName)))]
                return call.returning(.table(fields))
            }))
        b.append(
            LuaFunctionSpec("kvm._waiter:failure", "", body: { call in
                let handle = try call.object(1, as: TextWaiterHandle.self, typeName: TextWaiterHandle.typeName)
                return call.returning(.string(handle.waiter.notFoundMessage))
            }))
        b.append(
            LuaFunctionSpec("kvm._waiter:close", "", body: { call in
                try call.object(1, as: TextWaiterHandle.self, typeName: TextWaiterHandle.typeName).waiter.close()
                return .none
            }))
        runtime.registerType(TextWaiterHandle.self, name: TextWaiterHandle.typeName, methods: b.specs)
    }

    static let luaPrelude = #"""
        local methods = ...
        local find, lower, gsub, type, error, pcall = string.find, string.lower, string.gsub, type, error, pcall
        local text_waiter = methods._text_waiter
        -- Lower-cases the letters of a Lua pattern except the class letters after '%'.
        local function fold(pattern)
          return (gsub(pattern, "(%%?)(%a)", function(escape, c)
            if escape == "%" then return escape .. c end
            return lower(c)
          end))
        end
        local byte, huge, min = string.byte, math.huge, math.min
        -- The substring of `line` closest to `pattern` within `limit` edits (Sellers' algorithm:
        -- edit distance with a free start; each cell carries where its match began): first,
        -- last (bytes, 1-based) of the best, the earliest among equals; nil if none is close
        -- enough. Bytes, not characters: the screens read are ASCII where it matters.
        local function approximate(line, pattern, limit)
          local m, n = #pattern, #line
          local cost, start = {}, {}
          for i = 0, m do cost[i], start[i] = i, 1 end
          local best, bestFirst, bestLast = huge, nil, nil
          for j = 1, n do
            local c = byte(line, j)
            local diagonal, diagonalStart = cost[0], start[0]
            cost[0], start[0] = 0, j + 1
            for i = 1, m do
              local up, upStart = cost[i], start[i]
              local value, from = diagonal + (byte(pattern, i) == c and 0 or 1), diagonalStart
              if up + 1 < value then value, from = up + 1, upStart end
              if cost[i - 1] + 1 < value then value, from = cost[i - 1] + 1, start[i - 1] end
              diagonal, diagonalStart = up, upStart
              cost[i], start[i] = value, from
            end
            -- Equal costs one byte further on extend the match (a missing last character).
            if cost[m] <= limit and (cost[m] < best or (cost[m] == best and j == bestLast + 1)) then
              best, bestFirst, bestLast = cost[m], start[m], j
            end
          end
          if bestFirst and bestLast >= bestFirst then return bestFirst, bestLast end
        end
        local function search(lines, pattern, plain, ignore_case, limit)
          for i = 1, #lines do
            local line = ignore_case and lower(lines[i]) or lines[i]
            local first, last = find(line, pattern, 1, plain)
            if first and last >= first then return i, first, last end
          end
          if limit > 0 then
            for i = 1, #lines do
              local first, last = approximate(ignore_case and lower(lines[i]) or lines[i], pattern, limit)
              if first then return i, first, last end
            end
          end
        end
        local function run(name, dev, pattern, opts)
          if type(pattern) ~= "string" then
            error(kvm._usage("bad argument #1 to '" .. name .. "' (string expected, got " .. type(pattern) .. ")"), 3)
          end
          if opts ~= nil and type(opts) ~= "table" then
            error(kvm._usage("bad argument #2 to '" .. name .. "' (table expected, got " .. type(opts) .. ")"), 3)
          end
          local plain = not (opts and opts.plain == false)
          local ignore_case = not (opts and opts.ignore_case == false)
          local wanted = pattern
          if ignore_case then wanted = plain and lower(pattern) or fold(pattern) end
          local waiter = text_waiter(dev, pattern, opts, name)
          local limit = opts and opts.max_errors or 0
          local ok, a, b = pcall(function()
            while true do
              local lines = waiter:next()
              if lines == nil then return nil, waiter:failure() end
              local i, first, last = search(lines, wanted, plain, ignore_case, limit)
              if i then return waiter:match(i, first, last) end
            end
          end)
          waiter:close()
          if not ok then error(a, 0) end
          return a, b
        end
        methods.wait_text = function(dev, pattern, opts) return run("dev:wait_text", dev, pattern, opts) end
        methods.find_text = function(dev, pattern, opts) return run("dev:find_text", dev, pattern, opts) end
        methods.click_text = function(dev, pattern, opts)
          local match = run("dev:click_text", dev, pattern, opts)
          local dx, dy = 0, 0
          if opts and opts.offset ~= nil then
            if type(opts.offset) ~= "table" or type(opts.offset[1]) ~= "number" or type(opts.offset[2]) ~= "number" then
              error(kvm._usage("bad argument #2 to 'dev:click_text' (field 'offset' must be {dx, dy} fractions)"), 2)
            end
            dx, dy = opts.offset[1], opts.offset[2]
          end
          local x = math.min(math.max(match.x + match.w / 2 + dx, 0), 1)
          local y = math.min(math.max(match.y + match.h / 2 + dy, 0), 1)
          dev:click(opts and opts.button or "left", x, y)
          return match
        end
        """#

    static var luaSpecs: [LuaFunctionSpec] { [
        LuaFunctionSpec(
            "dev:wait_text", signature: "dev:wait_text(pattern [, opts])", returns: "table", options: waitTextOptionNames,
            """
            Waits until `pattern` appears on the screen and returns the first match: `{text=, line=,
            x=, y=, w=, h=, x_px=, y_px=, w_px=, h_px=, frame=}` (box as fractions, `line` the whole
            line read). Each new frame is read incrementally: only the text lines whose pixels
            changed are read again; frames that arrive during a read are skipped. \(waitOptionsDoc)
            A timeout raises `timeout` with the end of the text last read.
            """, body: nil),
        LuaFunctionSpec(
            "dev:find_text", signature: "dev:find_text(pattern [, opts])", returns: "table or nil, msg", options: findTextOptionNames,
            "Looks for `pattern` in the current frame (no waiting): the match as for `dev:wait_text`, or `nil` and a message with the text read. Options as for `dev:wait_text` (`opts.plain`, `opts.ignore_case`, `opts.max_errors`, `opts.area`, `opts.lang`, `opts.mode`).",
            body: nil),
        LuaFunctionSpec(
            "dev:click_text", signature: "dev:click_text(pattern [, opts])", returns: "table", options: clickTextOptionNames,
            """
            Waits like `dev:wait_text`, then clicks the centre of the match with `opts.button`
            (default "left"), moved by `opts.offset = {dx, dy}` (fractions of the screen); returns the
            match. Other options as for `dev:wait_text`: \(waitOptionsDoc)
            """, body: nil),
    ] }

    /// Installs the Lua half on the device methods (after DeviceBindings.register).
    static func installLuaParts(in runtime: LuaRuntime) throws(LuaRuntimeError) {
        try DeviceLuaMethods.install(luaPrelude, chunkName: "kvm.vision", in: runtime, documenting: luaSpecs)
    }
}
