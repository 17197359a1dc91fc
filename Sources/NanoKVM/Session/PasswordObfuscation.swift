// The NanoKVM password "encryption" (protocol §4.1): what `openssl enc -aes-256-cbc -md md5
// -salt -pass pass:nanokvm-sipeed-2024 -base64` prints, then URL-encoded like JavaScript's
// encodeURIComponent. It is obfuscation with a fixed public passphrase, not security; the
// device refuses plain-text passwords, so every password field must go through it.

import COpenSSL

public enum PasswordObfuscation {
    /// The passphrase shared by every firmware version (web UI `encrypt.ts`, server `encrypt.go`).
    public static let passphrase = "nanokvm-sipeed-2024"

    static let magic: [UInt8] = Array("Salted__".utf8)

    /// Obfuscates `password` for a password field. `salt` must be 8 bytes; nil draws a random one.
    /// With `urlEncoded: false` the result is the plain base64 that `openssl enc -base64` prints.
    public static func encrypt(
        _ password: String, salt: [UInt8]? = nil, urlEncoded: Bool = true
    ) throws(NanoKVMError) -> String {
        try requireLibcrypto()
        let saltBytes: [UInt8]
        if let salt {
            guard salt.count == 8 else {
                throw NanoKVMError(.usage, "password salt must be 8 bytes, not \(salt.count)")
            }
            saltBytes = salt
        } else {
            var random = [UInt8](repeating: 0, count: 8)
            let ok = random.withUnsafeMutableBufferPointer { kvm_RAND_bytes($0.baseAddress, 8) }
            guard ok == 1 else { throw NanoKVMError(.usage, "cannot draw random bytes for the password salt") }
            saltBytes = random
        }
        let (key, iv) = try deriveKey(salt: saltBytes)
        let ciphertext = try crypt(Array(password.utf8), key: key, iv: iv, encrypt: true)
        let base64 = Base64.encode(magic + saltBytes + ciphertext)
        return urlEncoded ? URLEncoding.encodeURIComponent(base64) : base64
    }

    /// Reverses `encrypt`: URL-decodes (like Go's `url.QueryUnescape`, so a bare `+` is a space),
    /// base64-decodes, checks the `Salted__` header and decrypts. With `urlEncoded: false` the
    /// input is taken as plain base64. Throws `usage` naming what is wrong with the text.
    public static func decrypt(_ field: String, urlEncoded: Bool = true) throws(NanoKVMError) -> String {
        try requireLibcrypto()
        let base64: String
        if urlEncoded {
            guard let unescaped = URLEncoding.queryUnescape(field) else {
                throw NanoKVMError(.usage, "password field is not valid URL encoding")
            }
            base64 = unescaped
        } else {
            base64 = field
        }
        guard let blob = Base64.decode(base64) else {
            throw NanoKVMError(.usage, "password field is not valid base64")
        }
        guard blob.count >= 16, Array(blob[0..<8]) == magic else {
            throw NanoKVMError(.usage, "password field is not an OpenSSL salted blob")
        }
        let ciphertext = Array(blob[16...])
        guard !ciphertext.isEmpty, ciphertext.count % 16 == 0 else {
            throw NanoKVMError(.usage, "password ciphertext length \(ciphertext.count) is not a positive multiple of 16")
        }
        let (key, iv) = try deriveKey(salt: Array(blob[8..<16]))
        let plain = try crypt(ciphertext, key: key, iv: iv, encrypt: false)
        guard let text = String(validating: plain, as: UTF8.self) else {
            throw NanoKVMError(.usage, "decrypted password is not UTF-8")
        }
        return text
    }

    /// libcrypto is loaded on first use (COpenSSL/shim.h); a missing library is said as such.
    static func requireLibcrypto() throws(NanoKVMError) {
        if let reason = kvm_crypto_load_error() { throw NanoKVMError(.usage, String(cString: reason)) }
    }

    /// EVP_BytesToKey(aes-256-cbc, md5, salt, passphrase, 1 round): 32-byte key, 16-byte IV.
    static func deriveKey(salt: [UInt8]) throws(NanoKVMError) -> (key: [UInt8], iv: [UInt8]) {
        var key = [UInt8](repeating: 0, count: 32)
        var iv = [UInt8](repeating: 0, count: 16)
        let pass = Array(passphrase.utf8)
        let length = salt.withUnsafeBufferPointer { saltBuffer in
            pass.withUnsafeBufferPointer { passBuffer in
                key.withUnsafeMutableBufferPointer { keyBuffer in
                    iv.withUnsafeMutableBufferPointer { ivBuffer in
                        kvm_EVP_BytesToKey(
                            kvm_EVP_aes_256_cbc(), kvm_EVP_md5(), saltBuffer.baseAddress, passBuffer.baseAddress,
                            Int32(passBuffer.count), 1, keyBuffer.baseAddress, ivBuffer.baseAddress)
                    }
                }
            }
        }
        guard length == 32 else { throw NanoKVMError(.usage, "password key derivation failed") }
        return (key, iv)
    }

    /// AES-256-CBC with PKCS#7 padding through libcrypto's EVP interface.
    static func crypt(_ input: [UInt8], key: [UInt8], iv: [UInt8], encrypt: Bool) throws(NanoKVMError) -> [UInt8] {
        guard let context = kvm_EVP_CIPHER_CTX_new() else { throw NanoKVMError(.usage, "cannot create a cipher context") }
        defer { kvm_EVP_CIPHER_CTX_free(context) }
        let initialised = key.withUnsafeBufferPointer { keyBuffer in
            iv.withUnsafeBufferPointer { ivBuffer in
                kvm_EVP_CipherInit_ex(context, kvm_EVP_aes_256_cbc(), nil, keyBuffer.baseAddress, ivBuffer.baseAddress, encrypt ? 1 : 0)
            }
        }
        guard initialised == 1 else { throw NanoKVMError(.usage, "cannot initialise AES-256-CBC") }
        var output = [UInt8](repeating: 0, count: input.count + 32)
        var written: Int32 = 0
        var finalWritten: Int32 = 0
        // EVP_CipherUpdate wants a non-null input pointer even for zero bytes.
        let source = input.isEmpty ? [0] : input
        let ok = source.withUnsafeBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer -> Bool in
                guard let outBase = outBuffer.baseAddress, let inBase = inBuffer.baseAddress else { return false }
                guard kvm_EVP_CipherUpdate(context, outBase, &written, inBase, Int32(input.count)) == 1 else {
                    return false
                }
                return kvm_EVP_CipherFinal_ex(context, outBase + Int(written), &finalWritten) == 1
            }
        }
        guard ok else {
            throw NanoKVMError(.usage, encrypt ? "AES encryption failed" : "password does not decrypt (wrong key or padding)")
        }
        return Array(output[0..<Int(written + finalWritten)])
    }
}

/// Standard base64 (RFC 4648 with `+`, `/` and `=` padding).
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out.append(alphabet[Int(value >> 18 & 63)])
            out.append(alphabet[Int(value >> 12 & 63)])
            out.append(alphabet[Int(value >> 6 & 63)])
            out.append(alphabet[Int(value & 63)])
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let value = UInt32(bytes[index]) << 16
            out.append(alphabet[Int(value >> 18 & 63)])
            out.append(alphabet[Int(value >> 12 & 63)])
            out.append(contentsOf: "==".utf8)
        } else if rest == 2 {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out.append(alphabet[Int(value >> 18 & 63)])
            out.append(alphabet[Int(value >> 12 & 63)])
            out.append(alphabet[Int(value >> 6 & 63)])
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes padded or unpadded base64; line breaks (as `openssl -base64` writes every 64
    /// characters) are skipped. Nil for any other character or a bad length.
    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        var padding = 0
        for c in text.utf8 {
            let value: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="): padding += 1; continue
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"): continue
            default: return nil
            }
            if padding > 0 { return nil }  // data after padding
            values.append(value)
        }
        if values.count % 4 == 1 || padding > 2 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var index = 0
        while index + 4 <= values.count {
            let v = UInt32(values[index]) << 18 | UInt32(values[index + 1]) << 12 | UInt32(values[index + 2]) << 6 | UInt32(values[index + 3])
            out.append(UInt8(v >> 16 & 0xFF)); out.append(UInt8(v >> 8 & 0xFF)); out.append(UInt8(v & 0xFF))
            index += 4
        }
        let rest = values.count - index
        if rest == 2 {
            let v = UInt32(values[index]) << 18 | UInt32(values[index + 1]) << 12
            out.append(UInt8(v >> 16 & 0xFF))
        } else if rest == 3 {
            let v = UInt32(values[index]) << 18 | UInt32(values[index + 1]) << 12 | UInt32(values[index + 2]) << 6
            out.append(UInt8(v >> 16 & 0xFF)); out.append(UInt8(v >> 8 & 0xFF))
        }
        return out
    }
}

/// Percent-encoding as the web UI and the Go server apply it.
enum URLEncoding {
    static let hex = Array("0123456789ABCDEF".utf8)

    /// JavaScript `encodeURIComponent`: everything but `A–Z a–z 0–9 - _ . ! ~ * ' ( )` is escaped.
    static func encodeURIComponent(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "!"), UInt8(ascii: "~"), UInt8(ascii: "*"), UInt8(ascii: "'"), UInt8(ascii: "("),
                UInt8(ascii: ")"):
                out.append(c)
            default:
                out.append(UInt8(ascii: "%")); out.append(hex[Int(c >> 4)]); out.append(hex[Int(c & 15)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Escapes a path segment (`/`, `?`, `#`, `%` and everything non-unreserved).
    static func encodePathSegment(_ text: String) -> String { encodeURIComponent(text) }

    /// Go `url.QueryUnescape`: `%XX` escapes and `+` → space; nil on a malformed escape.
    static func queryUnescape(_ text: String) -> String? {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                    return nil
                }
                out.append(high << 4 | low)
                index += 3
            } else if c == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
                index += 1
            } else {
                out.append(c)
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
