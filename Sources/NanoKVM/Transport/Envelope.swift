// The `{"code","msg","data"}` envelope every handled API call answers with (protocol §3),
// and small readers that turn its `data` into typed values or a `protocol` error.

/// A parsed response envelope.
public struct Envelope: Sendable, Equatable {
    public var code: Int
    public var message: String
    public var data: JSONValue

    /// Parses an envelope; anything else (not JSON, not an object, no integer `code`) is a
    /// `protocol` error. `msg` may be missing (AI control routes use `message`).
    public static func parse(_ bytes: [UInt8]) throws(NanoKVMError) -> Envelope {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes: bytes)
        } catch {
            let preview = Self.preview(bytes)
            throw NanoKVMError(.protocol, "answer is not JSON (\(error)): \(preview)")
        }
        guard case .object = value, let codeValue = value["code"] else {
            throw NanoKVMError(.protocol, "answer is not a response envelope: \(Self.preview(bytes))")
        }
        guard let code = codeValue.intValue else {
            throw NanoKVMError(.protocol, "envelope code is not an integer: \(Self.preview(bytes))")
        }
        let message = value["msg"]?.stringValue ?? value["message"]?.stringValue ?? ""
        return Envelope(code: code, message: message, data: value["data"] ?? .null)
    }

    /// The first bytes of an answer, printable, for error messages.
    static func preview(_ bytes: [UInt8]) -> String {
        if bytes.isEmpty { return "(empty body)" }
        let head = bytes.prefix(80).map { $0 >= 0x20 && $0 < 0x7F ? Character(Unicode.Scalar($0)) : "." }
        return "'" + String(head) + (bytes.count > 80 ? "…'" : "'")
    }
}

/// Reads fields of an envelope's `data`; a missing or mistyped field is a `protocol` error.
/// Empty lists are often sent as `null` (§3.1), so list readers accept it.
struct DataReader {
    let value: JSONValue
    let context: String

    init(_ value: JSONValue, _ context: String) throws(NanoKVMError) {
        guard case .object = value else {
            throw NanoKVMError(.protocol, "\(context): expected an object in data, got \(DataReader.kind(value))")
        }
        self.value = value
        self.context = context
    }

    static func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    func fail(_ key: String, _ expected: String) -> NanoKVMError {
        NanoKVMError(.protocol, "\(context): field '\(key)' is not \(expected)")
    }

    func has(_ key: String) -> Bool { value[key] != nil }

    func string(_ key: String) throws(NanoKVMError) -> String {
        guard let text = value[key]?.stringValue else { throw fail(key, "a string") }
        return text
    }

    func optionalString(_ key: String) throws(NanoKVMError) -> String? {
        guard let field = value[key], !field.isNull else { return nil }
        guard let text = field.stringValue else { throw fail(key, "a string") }
        return text
    }

    func bool(_ key: String) throws(NanoKVMError) -> Bool {
        guard let flag = value[key]?.boolValue else { throw fail(key, "a boolean") }
        return flag
    }

    func optionalBool(_ key: String) throws(NanoKVMError) -> Bool? {
        guard let field = value[key], !field.isNull else { return nil }
        guard let flag = field.boolValue else { throw fail(key, "a boolean") }
        return flag
    }

    func int(_ key: String) throws(NanoKVMError) -> Int {
        guard let number = value[key]?.intValue else { throw fail(key, "an integer") }
        return number
    }

    func optionalInt(_ key: String) throws(NanoKVMError) -> Int? {
        guard let field = value[key], !field.isNull else { return nil }
        guard let number = field.intValue else { throw fail(key, "an integer") }
        return number
    }

    /// A list of strings; `null` or a missing key is an empty list.
    func strings(_ key: String) throws(NanoKVMError) -> [String] {
        guard let field = value[key], !field.isNull else { return [] }
        guard let items = field.arrayValue else { throw fail(key, "a list") }
        var result: [String] = []
        for item in items {
            guard let text = item.stringValue else { throw fail(key, "a list of strings") }
            result.append(text)
        }
        return result
    }

    /// A list of objects; `null` or a missing key is an empty list.
    func objects(_ key: String) throws(NanoKVMError) -> [DataReader] {
        guard let field = value[key], !field.isNull else { return [] }
        guard let items = field.arrayValue else { throw fail(key, "a list") }
        var result: [DataReader] = []
        for item in items { result.append(try DataReader(item, "\(context).\(key)")) }
        return result
    }

    func object(_ key: String) throws(NanoKVMError) -> DataReader {
        guard let field = value[key] else { throw fail(key, "an object") }
        return try DataReader(field, "\(context).\(key)")
    }
}
