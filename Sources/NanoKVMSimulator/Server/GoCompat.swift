// Small re-implementations of the Go standard-library behaviour the device's server exposes:
// encoding/json's output (Gin's c.JSON), url.QueryUnescape, base64.StdEncoding.DecodeString
// (which returns the bytes decoded before an error), and time formats. The simulator must
// reproduce these byte for byte, so they are written out here rather than borrowed.

import Foundation
import NanoKVM

enum GoJSON {
    private static let hex = Array("0123456789abcdef".utf8)

    /// `json.Marshal` output: HTML characters escaped (`<` → `\u003c`), U+2028/U+2029 escaped,
    /// control characters as `\n` `\r` `\t` `\b` `\f` or `\u00XX`, DEL left alone.
    static func encode(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        write(value, into: &out)
        return out
    }

    static func encodeString(_ value: JSONValue) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    private static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case let .integer(i): out.append(contentsOf: String(i).utf8)
        case let .double(d):
            if d.isFinite {
                out.append(contentsOf: (d == d.rounded() && abs(d) < 1e21 ? String(Int64(d)) : "\(d)").utf8)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case let .string(s): writeString(s, into: &out)
        case let .array(items):
            out.append(UInt8(ascii: "["))
            for (n, item) in items.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(members):
            out.append(UInt8(ascii: "{"))
            for (n, member) in members.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(member.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func escapeByte(_ c: UInt8, into out: inout [UInt8]) {
        out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
    }

    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x00..<0x20, UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"): escapeByte(c, into: &out)
            case 0xE2 where i + 2 < bytes.count && bytes[i + 1] == 0x80 && (bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9):
                // U+2028 / U+2029: Go escapes them so the output is safe inside JavaScript.
                out.append(contentsOf: "\\u202".utf8)
                out.append(bytes[i + 2] == 0xA8 ? UInt8(ascii: "8") : UInt8(ascii: "9"))
                i += 2
            default: out.append(c)
            }
            i += 1
        }
        out.append(UInt8(ascii: "\""))
    }
}

enum GoURL {
    /// `url.QueryUnescape`: `+` becomes a space, `%XX` needs two hex digits (else an error).
    static func queryUnescape(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else {
                    return nil
                }
                out.append(hi << 4 | lo)
                i += 3
            } else if c == UInt8(ascii: "+") {
                out.append(0x20)
                i += 1
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Parses `a=1&b=2` (Go's `url.ParseQuery`, lenient: bad escapes drop the pair).
    static func parseQuery(_ text: String) -> [(String, String)] {
        var result: [(String, String)] = []
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = queryUnescape(String(parts[0])) else { continue }
            let value = parts.count > 1 ? queryUnescape(String(parts[1])) : []
            guard let value else { continue }
            result.append((String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return result
    }
}

enum GoBase64 {
    private static let decodeMap: [UInt8] = {
        var map = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            map[Int(c)] = UInt8(i)
        }
        return map
    }()

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// `base64.StdEncoding.DecodeString`, returning what Go returns next to an error: the bytes
    /// of every complete quantum before the first bad one (the server ignores the error).
    static func decodeLenient(_ src: [UInt8]) -> (bytes: [UInt8], valid: Bool) {
        var out: [UInt8] = []
        var si = 0
        while si < src.count {
            var quantum = [UInt8](repeating: 0, count: 4)
            var length = 4
            var j = 0
            var failed = false
            var finished = false
            while j < 4 {
                if si == src.count {
                    if j == 0 { return (out, true) }
                    return (out, false)  // missing padding
                }
                let c = src[si]
                si += 1
                let value = decodeMap[Int(c)]
                if value != 0xFF { quantum[j] = value; j += 1; continue }
                if c == 0x0A || c == 0x0D { continue }
                guard c == UInt8(ascii: "="), j >= 2 else { failed = true; break }
                if j == 2 {
                    while si < src.count, src[si] == 0x0A || src[si] == 0x0D { si += 1 }
                    guard si < src.count, src[si] == UInt8(ascii: "=") else { failed = true; break }
                    si += 1
                }
                while si < src.count, src[si] == 0x0A || src[si] == 0x0D { si += 1 }
                length = j
                finished = true
                break
            }
            if failed { return (out, false) }
            let value = UInt32(quantum[0]) << 18 | UInt32(quantum[1]) << 12 | UInt32(quantum[2]) << 6 | UInt32(quantum[3])
            let decoded = [UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
            out.append(contentsOf: decoded[0..<(length - 1)])
            if finished { return (out, si == src.count) }
        }
        return (out, true)
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Unpadded URL-safe base64 (JWT segments).
    static func encodeURL(_ bytes: [UInt8]) -> String {
        var text = encode(bytes)
        while text.hasSuffix("=") { text.removeLast() }
        return text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    static func decodeURL(_ text: String) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !standard.contains("="), !standard.contains("\n"), !standard.contains("\r") else { return nil }
        while standard.utf8.count % 4 != 0 { standard += "=" }
        let (bytes, valid) = decodeLenient(Array(standard.utf8))
        return valid ? bytes : nil
    }
}

enum GoTime {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private static func components(_ date: Date) -> tm {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return parts
    }

    private static func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// `http.TimeFormat`: `Mon, 02 Jan 2006 15:04:05 GMT` (the `Date` header).
    static func httpDate(_ date: Date = Date()) -> String {
        let t = components(date)
        return "\(days[Int(t.tm_wday) % 7]), \(two(t.tm_mday)) \(months[Int(t.tm_mon) % 12]) \(t.tm_year + 1900) \(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec)) GMT"
    }

    /// `time.RFC1123` in UTC, as the device (zone UTC) writes `X-Server-Date`.
    static func rfc1123UTC(_ date: Date = Date()) -> String {
        let t = components(date)
        return "\(days[Int(t.tm_wday) % 7]), \(two(t.tm_mday)) \(months[Int(t.tm_mon) % 12]) \(t.tm_year + 1900) \(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec)) UTC"
    }

    /// RFC 3339 with nanoseconds in UTC (`time.RFC3339Nano`, trailing zeros dropped like Go).
    static func rfc3339Nano(_ date: Date) -> String {
        let t = components(date)
        let whole = date.timeIntervalSince1970.rounded(.down)
        var nanos = Int(((date.timeIntervalSince1970 - whole) * 1_000_000_000).rounded())
        if nanos >= 1_000_000_000 { nanos = 999_999_999 }
        var fraction = ""
        if nanos > 0 {
            fraction = String(nanos)
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            fraction = "." + fraction
        }
        return "\(t.tm_year + 1900)-\(two(t.tm_mon + 1))-\(two(t.tm_mday))T\(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec))\(fraction)Z"
    }
}
