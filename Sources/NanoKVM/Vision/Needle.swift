// Needles in openQA's format, so existing collections load and needles made here work there:
// `name.json` + `name.png`, the JSON holding `area` (a list of {xpos, ypos, width, height,
// type: "match" | "ocr" | "exclude", match: percent (default 96), margin: px (default 50),
// click_point: {xpos, ypos} relative to the area, or "center"}), `tags` and `properties`.
// The PNG is a full screenshot; the areas say which parts must be found again.

/// One area of a needle, in pixels of its PNG.
public struct NeedleArea: Sendable, Equatable {
    public enum Kind: String, Sendable { case match, ocr, exclude }
    public var rect: PixelRect
    public var kind: Kind
    /// Required similarity, 0–100.
    public var match: Double
    /// How far (px) the area may have moved and still be found first.
    public var margin: Int
    /// Relative to the area's top left; nil: none. `center` is stored as the centre.
    public var clickPoint: (x: Double, y: Double)?
    public var clickCenter: Bool

    public init(rect: PixelRect, kind: Kind = .match, match: Double = 96, margin: Int = 50, clickPoint: (x: Double, y: Double)? = nil, clickCenter: Bool = false) {
        self.rect = rect
        self.kind = kind
        self.match = match
        self.margin = margin
        self.clickPoint = clickPoint
        self.clickCenter = clickCenter
    }

    public static func == (a: NeedleArea, b: NeedleArea) -> Bool {
        a.rect == b.rect && a.kind == b.kind && a.match == b.match && a.margin == b.margin && a.clickCenter == b.clickCenter
            && a.clickPoint?.x == b.clickPoint?.x && a.clickPoint?.y == b.clickPoint?.y
    }
}

/// A loaded needle with its templates prepared for matching.
public struct Needle: Sendable {
    public let name: String
    /// The JSON file it came from.
    public let path: String
    public let width: Int
    public let height: Int
    public let areas: [NeedleArea]
    public let tags: [String]
    public let properties: [JSONValue]
    /// Per area of kind match/ocr: its template (exclude areas masked out).
    let templates: [(area: NeedleArea, template: Template, neutral: GrayImage)]

    public init(name: String, path: String, image: RGBImage, areas: [NeedleArea], tags: [String], properties: [JSONValue]) throws(NanoKVMError) {
        for (index, area) in areas.enumerated() {
            let r = area.rect
            guard r.x >= 0, r.y >= 0, r.width > 0, r.height > 0, r.maxX <= image.width, r.maxY <= image.height else {
                throw NanoKVMError(
                    .usage, "\(Needle.pngPath(path)): the PNG is \(image.width)x\(image.height) but area \(index + 1) is \(r.width)x\(r.height) at (\(r.x), \(r.y)) (wrong size for its JSON)")
            }
            guard area.match > 0, area.match <= 100 else { throw NanoKVMError(.usage, "\(path): area \(index + 1) has match \(area.match), not in 1..100") }
            guard area.margin >= 0 else { throw NanoKVMError(.usage, "\(path): area \(index + 1) has a negative margin") }
        }
        guard areas.contains(where: { $0.kind != .exclude }) else { throw NanoKVMError(.usage, "\(path): the needle has no match area") }
        self.name = name
        self.path = path
        width = image.width
        height = image.height
        self.areas = areas
        self.tags = tags
        self.properties = properties
        let gray = GrayImage(image)
        let excludes = areas.filter { $0.kind == .exclude }.map(\.rect)
        templates = areas.filter { $0.kind != .exclude }.map { area in
            let r = area.rect
            let image = gray.crop(x: r.x, y: r.y, width: r.width, height: r.height)
            var mask: [Bool]?
            for exclude in excludes {
                let overlap = TemplateMatcher.clip(exclude, to: r)
                guard overlap.width > 0, overlap.height > 0 else { continue }
                if mask == nil { mask = [Bool](repeating: true, count: r.width * r.height) }
                for y in overlap.y..<overlap.maxY {
                    for x in overlap.x..<overlap.maxX { mask?[(y - r.y) * r.width + x - r.x] = false }
                }
            }
            let template = Template(image: image, mask: mask)
            return (area, template, template.neutralised())
        }
    }

    static func pngPath(_ jsonPath: String) -> String {
        (jsonPath.hasSuffix(".json") ? String(jsonPath.dropLast(5)) : jsonPath) + ".png"
    }

    // MARK: Loading and saving

    /// A needle file (`x.json`, or `x` / `x.png` of the pair), or every needle under a directory
    /// (recursively). Raises `usage` naming the file for malformed JSON, a missing or unreadable
    /// PNG, or areas that do not fit the PNG.
    public static func load(_ path: String) throws(NanoKVMError) -> [Needle] {
        if FileInput.isDirectory(path) {
            var needles: [Needle] = []
            for file in FileInput.files(under: path) where file.hasSuffix(".json") { needles.append(try loadFile(file)) }
            return needles
        }
        var json = path
        if path.hasSuffix(".png") { json = String(path.dropLast(4)) + ".json" } else if !path.hasSuffix(".json") { json = path + ".json" }
        return [try loadFile(json)]
    }

    static func loadFile(_ json: String) throws(NanoKVMError) -> Needle {
        let bytes = try FileInput.readFile(json)
        let document: JSONValue
        do { document = try JSONValue.parse(bytes: bytes) } catch { throw NanoKVMError(.usage, "\(json): malformed JSON (\(error))") }
        func bad(_ why: String) -> NanoKVMError { NanoKVMError(.usage, "\(json): \(why)") }
        guard document.objectValue != nil else { throw bad("not a JSON object") }
        guard let list = document["area"]?.arrayValue else { throw bad("no \"area\" list") }
        var areas: [NeedleArea] = []
        for (index, item) in list.enumerated() {
            func number(_ key: String) throws(NanoKVMError) -> Int {
                guard let value = item[key]?.doubleValue, value.isFinite else { throw bad("area \(index + 1) needs a number \"\(key)\"") }
                return Int(value.rounded())
            }
            let rect = PixelRect(x: try number("xpos"), y: try number("ypos"), width: try number("width"), height: try number("height"))
            let typeName = item["type"]?.stringValue ?? "match"
            guard let kind = NeedleArea.Kind(rawValue: typeName) else { throw bad("area \(index + 1) has unknown type \"\(typeName)\"") }
            var area = NeedleArea(rect: rect, kind: kind)
            if let match = item["match"] {
                guard let value = match.doubleValue else { throw bad("area \(index + 1): \"match\" must be a number") }
                area.match = value
            }
            if let margin = item["margin"] {
                guard let value = margin.doubleValue else { throw bad("area \(index + 1): \"margin\" must be a number") }
                area.margin = Int(value.rounded())
            }
            if let click = item["click_point"] {
                if click.stringValue == "center" {
                    area.clickCenter = true
                } else if let x = click["xpos"]?.doubleValue, let y = click["ypos"]?.doubleValue {
                    area.clickPoint = (x, y)
                } else {
                    throw bad("area \(index + 1): \"click_point\" must be {\"xpos\":, \"ypos\":} or \"center\"")
                }
            }
            areas.append(area)
        }
        let tags = (document["tags"]?.arrayValue ?? []).compactMap(\.stringValue)
        let properties = document["properties"]?.arrayValue ?? []
        let png = pngPath(json)
        let image = try PNGReader.decode(try FileInput.readFile(png), name: png)
        var name = String(json.dropLast(5))
        if let slash = name.lastIndex(of: "/") { name = String(name[name.index(after: slash)...]) }
        return try Needle(name: name, path: json, image: image, areas: areas, tags: tags, properties: properties)
    }

    /// The openQA JSON of this needle's areas, tags and properties.
    static func json(areas: [NeedleArea], tags: [String], properties: [JSONValue]) -> JSONValue {
        .object([
            ("area", .array(areas.map { area in
                var fields: [(key: String, value: JSONValue)] = [
                    ("xpos", .integer(Int64(area.rect.x))), ("ypos", .integer(Int64(area.rect.y))),
                    ("width", .integer(Int64(area.rect.width))), ("height", .integer(Int64(area.rect.height))),
                    ("type", .string(area.kind.rawValue)),
                ]
                if area.kind != .exclude {
                    fields.append(("match", area.match == area.match.rounded() ? .integer(Int64(area.match)) : .double(area.match)))
                    if area.margin != 50 { fields.append(("margin", .integer(Int64(area.margin)))) }
                }
                if area.clickCenter {
                    fields.append(("click_point", .string("center")))
                } else if let point = area.clickPoint {
                    fields.append(("click_point", .object([("xpos", .double(point.x)), ("ypos", .double(point.y))])))
                }
                return .object(fields)
            })),
            ("properties", .array(properties)),
            ("tags", .array(tags.map { .string($0) })),
        ])
    }

    /// Writes `path.json` + `path.png` (a `.json`/`.png` suffix of `path` is dropped) from
    /// `frame` and returns the needle.
    @discardableResult
    public static func save(_ frame: Frame, to path: String, areas: [NeedleArea], tags: [String], properties: [JSONValue] = []) throws(NanoKVMError) -> Needle {
        var base = path
        if base.hasSuffix(".json") { base = String(base.dropLast(5)) } else if base.hasSuffix(".png") { base = String(base.dropLast(4)) }
        let image = try frame.pixels()
        var name = base
        if let slash = name.lastIndex(of: "/") { name = String(name[name.index(after: slash)...]) }
        let needle = try Needle(name: name, path: base + ".json", image: image, areas: areas, tags: tags, properties: properties)
        let text: String
        do { text = try json(areas: areas, tags: tags, properties: properties).serialized() } catch {
            throw NanoKVMError(.usage, "\(base).json: \(error)")
        }
        try FileOutput.writeFile(try PNGWriter.encode(image), to: base + ".png")
        try FileOutput.writeFile(Array((text + "\n").utf8), to: base + ".json")
        return needle
    }

    // MARK: Matching

    /// Where this needle is in `frame` (grayscale of a frame) and how well it matches there.
    /// `matched` says whether every area reached its `match`.
    public func search(_ frame: GrayImage) -> NeedleMatch {
        guard frame.width == width, frame.height == height else {
            return NeedleMatch(needle: self, rect: areas[0].rect, similarity: 0, matched: false, click: nil,
                               note: "the needle is \(width)x\(height), the screen \(frame.width)x\(frame.height)")
        }
        guard let first = templates.first else { return NeedleMatch(needle: self, rect: areas[0].rect, similarity: 0, matched: false, click: nil, note: "no match area") }
        func place(_ entry: (area: NeedleArea, template: Template, neutral: GrayImage), expected: (x: Int, y: Int), margin: Int) -> (x: Int, y: Int, similarity: Double)? {
            let window = PixelRect(x: expected.x - margin, y: expected.y - margin, width: 2 * margin + 1, height: 2 * margin + 1)
            guard let found = TemplateMatcher.locate(entry.neutral, in: frame, window: window) else { return nil }
            return (found.x, found.y, TemplateMatcher.similarity(entry.template, in: frame, x: found.x, y: found.y))
        }
        let r = first.area.rect
        var anchor = place(first, expected: (r.x, r.y), margin: first.area.margin)
        if (anchor?.similarity ?? 0) < first.area.match, let anywhere = TemplateMatcher.locate(first.neutral, in: frame) {
            let similarity = TemplateMatcher.similarity(first.template, in: frame, x: anywhere.x, y: anywhere.y)
            if similarity > (anchor?.similarity ?? -1) { anchor = (anywhere.x, anywhere.y, similarity) }
        }
        guard let anchor else { return NeedleMatch(needle: self, rect: r, similarity: 0, matched: false, click: nil, note: "not found") }
        let dx = anchor.x - r.x, dy = anchor.y - r.y
        var similarity = anchor.similarity
        var matched = anchor.similarity >= first.area.match
        var rects = [PixelRect(x: anchor.x, y: anchor.y, width: r.width, height: r.height)]
        for entry in templates.dropFirst() {
            let ar = entry.area.rect
            // The other areas move with the first; a few pixels of play for rounding.
            let placed = place(entry, expected: (ar.x + dx, ar.y + dy), margin: 2)
            let s = placed?.similarity ?? 0
            similarity = min(similarity, s)
            if s < entry.area.match { matched = false }
            rects.append(PixelRect(x: placed?.x ?? ar.x + dx, y: placed?.y ?? ar.y + dy, width: ar.width, height: ar.height))
        }
        // Click: the area with a click point, else the centre of the first match area.
        var click: (x: Double, y: Double)?
        for (index, entry) in templates.enumerated() {
            let placed = rects[index]
            if entry.area.clickCenter {
                click = (Double(placed.x) + Double(placed.width) / 2, Double(placed.y) + Double(placed.height) / 2)
                break
            }
            if let point = entry.area.clickPoint {
                click = (Double(placed.x) + point.x, Double(placed.y) + point.y)
                break
            }
        }
        return NeedleMatch(needle: self, rect: rects[0], similarity: similarity, matched: matched, click: click, note: nil)
    }
}

/// The outcome of searching one needle in one frame.
public struct NeedleMatch: Sendable {
    public let needle: Needle
    /// The first match area where it was found (frame pixels).
    public let rect: PixelRect
    /// The worst area's similarity, 0–100.
    public let similarity: Double
    public let matched: Bool
    /// The click point in frame pixels, if the needle has one.
    public let click: (x: Double, y: Double)?
    /// Why nothing could be compared (a size mismatch), else nil.
    public let note: String?

    /// The click point, else the centre of `rect`, in frame pixels.
    public var clickPoint: (x: Double, y: Double) {
        click ?? (Double(rect.x) + Double(rect.width) / 2, Double(rect.y) + Double(rect.height) / 2)
    }
}
