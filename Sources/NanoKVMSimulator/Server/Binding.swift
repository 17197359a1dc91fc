// Request-body binding as Gin's `ShouldBind` + go-playground `validate` do it on the device
// (protocol §2.2): JSON for `Content-Type: application/json` with keys matched
// case-insensitively, form decoding (query string, urlencoded or multipart body) with
// exact Go field names otherwise; an empty JSON body fails with EOF.

import NanoKVM

/// One field of a Go request struct.
struct GoField: Sendable {
    enum Kind: Sendable {
        case string, int, uint, bool, stringArray, objectArray
        /// Pointer to bool: nil when absent (validate `required` = present).
        case optionalBool
        case optionalString
    }

    var name: String
    var json: String?
    var form: String?
    var kind: Kind
    var required = false

    init(_ name: String, _ kind: Kind, json: String? = nil, form: String? = nil, required: Bool = false) {
        self.name = name
        self.kind = kind
        self.json = json
        self.form = form
        self.required = required
    }

    var jsonKey: String { json ?? name }
    var formKey: String { form ?? name }
}

/// The decoded values of a request struct (by Go field name; absent = zero value).
struct BoundRequest: Sendable {
    var values: [String: JSONValue] = [:]

    func string(_ name: String) -> String { values[name]?.stringValue ?? "" }
    func int(_ name: String) -> Int { values[name]?.intValue ?? 0 }
    func bool(_ name: String) -> Bool { values[name]?.boolValue ?? false }
    func optionalBool(_ name: String) -> Bool? { values[name]?.boolValue }
    func optionalString(_ name: String) -> String? { values[name]?.stringValue }
    func strings(_ name: String) -> [String] { values[name]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    func array(_ name: String) -> [JSONValue]? { values[name]?.arrayValue }
    func isPresent(_ name: String) -> Bool { values[name] != nil }
}

struct BindError: Error, Sendable {
    var message: String
}

enum RequestBinder {
    static func contentType(_ request: SimRequest) -> String {
        let raw = request.header("Content-Type") ?? ""
        let base = raw.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        return base.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// Gin's `ShouldBind` followed by `validate.Struct`.
    static func bind(_ request: SimRequest, _ structName: String, _ fields: [GoField]) -> Result<BoundRequest, BindError> {
        let bound: BoundRequest
        let type = contentType(request)
        if request.method != "GET", type == "application/json" {
            switch bindJSON(request.body, structName, fields) {
            case let .success(b): bound = b
            case let .failure(e): return .failure(e)
            }
        } else if request.method != "GET", ["application/xml", "text/xml", "application/x-protobuf", "application/x-msgpack",
            "application/msgpack", "application/x-yaml", "application/yaml", "application/toml"].contains(type)
        {
            return .failure(BindError(message: "unsupported body encoding \(type)"))
        } else {
            switch bindForm(request, structName, fields) {
            case let .success(b): bound = b
            case let .failure(e): return .failure(e)
            }
        }
        for field in fields where field.required {
            let missing: Bool
            switch field.kind {
            case .string: missing = bound.string(field.name).isEmpty
            case .int, .uint: missing = bound.int(field.name) == 0
            case .bool: missing = !bound.bool(field.name)
            case .optionalBool, .optionalString: missing = !bound.isPresent(field.name) || bound.values[field.name] == .null
            case .stringArray, .objectArray: missing = bound.array(field.name) == nil
            }
            if missing {
                return .failure(BindError(
                    message: "Key: '\(structName).\(field.name)' Error:Field validation for '\(field.name)' failed on the 'required' tag"))
            }
        }
        return .success(bound)
    }

    private static func goType(_ kind: GoField.Kind) -> String {
        switch kind {
        case .string: return "string"
        case .int: return "int"
        case .uint: return "uint"
        case .bool: return "bool"
        case .optionalBool: return "*bool"
        case .optionalString: return "*string"
        case .stringArray: return "[]string"
        case .objectArray: return "[]struct"
        }
    }

    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "bool"
        case let .integer(i): return "number \(i)"
        case let .double(d): return "number \(d)"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    static func bindJSON(_ body: [UInt8], _ structName: String, _ fields: [GoField]) -> Result<BoundRequest, BindError> {
        // json.Decoder reads one value and ignores what follows it.
        var start = 0
        while start < body.count, [0x20, 0x09, 0x0A, 0x0D].contains(body[start]) { start += 1 }
        if start == body.count { return .failure(BindError(message: "EOF")) }
        let document: JSONValue
        if let parsed = try? JSONValue.parse(bytes: body[start...]) {
            document = parsed
        } else if let end = firstValueEnd(body, from: start), let parsed = try? JSONValue.parse(bytes: body[start..<end]) {
            document = parsed
        } else {
            return .failure(BindError(message: "invalid character looking for beginning of value"))
        }
        var bound = BoundRequest()
        switch document {
        case .null:
            return .success(bound)
        case let .object(members):
            for member in members {
                // Go prefers an exact key match, then a case-insensitive one; later keys win.
                guard let field = fields.first(where: { $0.jsonKey == member.key })
                    ?? fields.first(where: { $0.jsonKey.lowercased() == member.key.lowercased() })
                else { continue }
                let value = member.value
                if value == .null {
                    if field.kind == .optionalBool || field.kind == .optionalString { bound.values[field.name] = nil }
                    continue
                }
                let typeError = BindError(
                    message: "json: cannot unmarshal \(describe(value)) into Go struct field \(structName).\(field.jsonKey) of type \(goType(field.kind))")
                switch field.kind {
                case .string, .optionalString:
                    guard case .string = value else { return .failure(typeError) }
                case .int:
                    guard value.intValue != nil, case .integer = value else { return .failure(typeError) }
                case .uint:
                    guard let i = value.intValue, i >= 0, case .integer = value else { return .failure(typeError) }
                case .bool, .optionalBool:
                    guard case .bool = value else { return .failure(typeError) }
                case .stringArray:
                    guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil || $0 == .null }) else {
                        return .failure(typeError)
                    }
                case .objectArray:
                    guard let items = value.arrayValue, items.allSatisfy({ $0.objectValue != nil || $0 == .null }) else {
                        return .failure(typeError)
                    }
                }
                bound.values[field.name] = value
            }
            return .success(bound)
        default:
            return .failure(BindError(message: "json: cannot unmarshal \(describe(document)) into Go value of type proto.\(structName)"))
        }
    }

    /// End of the first complete JSON value (for bodies with trailing text).
    private static func firstValueEnd(_ body: [UInt8], from start: Int) -> Int? {
        var depth = 0
        var inString = false
        var escaped = false
        var index = start
        guard index < body.count, body[index] == UInt8(ascii: "{") || body[index] == UInt8(ascii: "[") else { return nil }
        while index < body.count {
            let c = body[index]
            if inString {
                if escaped { escaped = false } else if c == 0x5C { escaped = true } else if c == 0x22 { inString = false }
            } else if c == 0x22 {
                inString = true
            } else if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                depth += 1
            } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 { return index + 1 }
            }
            index += 1
        }
        return nil
    }

    /// Form values: the URL query, plus an urlencoded or multipart body (Go's ParseMultipartForm).
    static func formValues(_ request: SimRequest) -> [String: [String]] {
        var values: [String: [String]] = [:]
        let type = contentType(request)
        if request.method != "GET" {
            if type == "application/x-www-form-urlencoded" {
                for (k, v) in GoURL.parseQuery(String(decoding: request.body, as: UTF8.self)) { values[k, default: []].append(v) }
            } else if type == "multipart/form-data" {
                for part in Multipart.parse(request) where part.filename == nil {
                    values[part.name, default: []].append(String(decoding: part.data, as: UTF8.self))
                }
            }
        }
        for (k, v) in request.queryItems { values[k, default: []].append(v) }
        return values
    }

    static func bindForm(_ request: SimRequest, _ structName: String, _ fields: [GoField]) -> Result<BoundRequest, BindError> {
        let values = formValues(request)
        var bound = BoundRequest()
        for field in fields {
            guard let list = values[field.formKey], let first = list.first else { continue }
            switch field.kind {
            case .string, .optionalString:
                bound.values[field.name] = .string(first)
            case .int:
                if first.isEmpty { bound.values[field.name] = 0; continue }
                guard let i = Int(first) else {
                    return .failure(BindError(message: "strconv.ParseInt: parsing \"\(first)\": invalid syntax"))
                }
                bound.values[field.name] = .integer(Int64(i))
            case .uint:
                if first.isEmpty { bound.values[field.name] = 0; continue }
                guard let i = UInt(first), let value = Int64(exactly: i) else {
                    return .failure(BindError(message: "strconv.ParseUint: parsing \"\(first)\": invalid syntax"))
                }
                bound.values[field.name] = .integer(value)
            case .bool, .optionalBool:
                if first.isEmpty { bound.values[field.name] = false; continue }
                switch first {
                case "1", "t", "T", "TRUE", "true", "True": bound.values[field.name] = true
                case "0", "f", "F", "FALSE", "false", "False": bound.values[field.name] = false
                default: return .failure(BindError(message: "strconv.ParseBool: parsing \"\(first)\": invalid syntax"))
                }
            case .stringArray:
                bound.values[field.name] = .array(list.map { .string($0) })
            case .objectArray:
                return .failure(BindError(message: "unsupported form field \(field.name)"))
            }
        }
        return .success(bound)
    }
}

/// A minimal multipart/form-data reader (script and image uploads, form fields).
enum Multipart {
    struct Part: Sendable {
        var name: String
        var filename: String?
        var data: [UInt8]
    }

    static func parse(_ request: SimRequest) -> [Part] {
        guard let raw = request.header("Content-Type"),
            let boundaryRange = raw.range(of: "boundary=")
        else { return [] }
        var boundary = String(raw[boundaryRange.upperBound...])
        if let semicolon = boundary.firstIndex(of: ";") { boundary = String(boundary[..<semicolon]) }
        boundary = boundary.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        guard !boundary.isEmpty else { return [] }
        let delimiter = Array("--\(boundary)".utf8)
        let body = request.body
        var parts: [Part] = []
        var positions: [Int] = []
        var i = 0
        while i + delimiter.count <= body.count {
            if body[i] == delimiter[0], Array(body[i..<(i + delimiter.count)]) == delimiter {
                positions.append(i)
                i += delimiter.count
            } else {
                i += 1
            }
        }
        for (n, position) in positions.enumerated() where n + 1 < positions.count {
            var start = position + delimiter.count
            if start + 1 < body.count, body[start] == 0x0D, body[start + 1] == 0x0A { start += 2 }
            var end = positions[n + 1]
            if end >= 2, body[end - 2] == 0x0D, body[end - 1] == 0x0A { end -= 2 }
            guard start <= end else { continue }
            let section = Array(body[start..<end])
            guard let split = findHeaderEnd(section) else { continue }
            let headerText = String(decoding: section[0..<split], as: UTF8.self)
            let data = Array(section[(split + 4)...])
            var name = ""
            var filename: String?
            for line in headerText.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-disposition") {
                for item in line.split(separator: ";") {
                    let trimmed = item.trimmingCharacters(in: .whitespaces)
                    if trimmed.hasPrefix("name=") {
                        name = trimmed.dropFirst(5).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    } else if trimmed.hasPrefix("filename=") {
                        filename = trimmed.dropFirst(9).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    }
                }
            }
            parts.append(Part(name: name, filename: filename, data: data))
        }
        return parts
    }

    private static func findHeaderEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 0x0D && bytes[i + 1] == 0x0A && bytes[i + 2] == 0x0D && bytes[i + 3] == 0x0A {
            return i
        }
        return nil
    }
}

import Foundation
