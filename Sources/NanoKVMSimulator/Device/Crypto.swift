// The device's password obfuscation as its server decodes it (protocol §4.1: url.QueryUnescape,
// base64, "Salted__", EVP_BytesToKey with MD5, AES-256-CBC, PKCS#7 stripped by the last byte
// without checks), including the inputs that make the Go server panic (HTTP 500). Also the
// simulator's own encryptor and HMAC-SHA256 for its JWTs. All through libcrypto.

internal import COpenSSL

enum DeviceCrypto {
    static let passphrase = Array("nanokvm-sipeed-2024".utf8)
    static let magic = Array("Salted__".utf8)

    /// What the device's `utils.DecodeDecrypt` makes of a password field.
    enum Decoded: Equatable {
        /// `url.QueryUnescape` failed (bad `%` escape).
        case unescapeError
        /// The decrypted bytes; empty when the blob was not a salted blob at all.
        case plaintext([UInt8])
        /// The Go decryptor would panic (ciphertext not whole blocks, empty, bad padding length).
        case panic
    }

    static func decodeDecrypt(_ field: String) -> Decoded {
        if field.isEmpty { return .plaintext([]) }
        guard let unescaped = GoURL.queryUnescape(field) else { return .unescapeError }
        if unescaped.isEmpty { return .plaintext([]) }
        let blob = GoBase64.decodeLenient(unescaped).bytes
        guard blob.count >= 16, Array(blob[0..<8]) == magic else { return .plaintext([]) }
        let salt = Array(blob[8..<16])
        let ciphertext = Array(blob[16...])
        guard ciphertext.count % 16 == 0, !ciphertext.isEmpty else { return .panic }
        let (key, iv) = deriveKey(salt: salt)
        guard let plain = aesCBC(ciphertext, key: key, iv: iv, encrypt: false), let last = plain.last else {
            return .panic
        }
        let padding = Int(last)
        guard padding <= plain.count else { return .panic }
        return .plaintext(Array(plain[0..<(plain.count - padding)]))
    }

    /// `openssl enc -aes-256-cbc -md md5 -salt -pass pass:nanokvm-sipeed-2024 -base64`, then
    /// URL-encoded like `encodeURIComponent` when `urlEncoded`.
    static func encrypt(_ password: String, salt fixedSalt: [UInt8]? = nil, urlEncoded: Bool = true) -> String {
        var salt = fixedSalt ?? [UInt8](repeating: 0, count: 8)
        if fixedSalt == nil || salt.count != 8 {
            salt = [UInt8](repeating: 0, count: 8)
            _ = salt.withUnsafeMutableBufferPointer { kvm_RAND_bytes($0.baseAddress, 8) }
        }
        let (key, iv) = deriveKey(salt: salt)
        var plain = Array(password.utf8)
        let pad = 16 - plain.count % 16
        plain.append(contentsOf: [UInt8](repeating: UInt8(pad), count: pad))
        let ciphertext = aesCBC(plain, key: key, iv: iv, encrypt: true) ?? []
        let base64 = GoBase64.encode(magic + salt + ciphertext)
        guard urlEncoded else { return base64 }
        var out = ""
        for c in base64.unicodeScalars {
            switch c {
            case "+": out += "%2B"
            case "/": out += "%2F"
            case "=": out += "%3D"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func deriveKey(salt: [UInt8]) -> (key: [UInt8], iv: [UInt8]) {
        var derived: [UInt8] = []
        var block: [UInt8] = []
        while derived.count < 48 {
            block = digest(block + passphrase + salt, sha256: false)
            derived += block
        }
        return (Array(derived[0..<32]), Array(derived[32..<48]))
    }

    /// Raw AES-256-CBC without padding (the caller handles PKCS#7 like the device does).
    static func aesCBC(_ input: [UInt8], key: [UInt8], iv: [UInt8], encrypt: Bool) -> [UInt8]? {
        guard input.count % 16 == 0, key.count == 32, iv.count == 16, let context = kvm_EVP_CIPHER_CTX_new() else {
            return nil
        }
        defer { kvm_EVP_CIPHER_CTX_free(context) }
        guard kvm_EVP_CipherInit_ex(context, kvm_EVP_aes_256_cbc(), nil, key, iv, encrypt ? 1 : 0) == 1 else { return nil }
        kvm_EVP_CIPHER_CTX_set_padding(context, 0)
        var output = [UInt8](repeating: 0, count: input.count + 16)
        var written: Int32 = 0
        var total = 0
        let ok = output.withUnsafeMutableBufferPointer { out -> Bool in
            guard let base = out.baseAddress else { return false }
            guard kvm_EVP_CipherUpdate(context, base, &written, input, Int32(input.count)) == 1 else { return false }
            total = Int(written)
            guard kvm_EVP_CipherFinal_ex(context, base + total, &written) == 1 else { return false }
            total += Int(written)
            return true
        }
        guard ok else { return nil }
        return Array(output[0..<total])
    }

    static func digest(_ data: [UInt8], sha256: Bool) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var size: UInt32 = 0
        let ok = kvm_EVP_Digest(data, data.count, &out, &size, sha256 ? kvm_EVP_sha256() : kvm_EVP_md5(), nil)
        return ok == 1 ? Array(out[0..<Int(size)]) : []
    }

    static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var keyBlock = key.count > 64 ? digest(key, sha256: true) : key
        keyBlock += [UInt8](repeating: 0, count: 64 - keyBlock.count)
        let inner = digest(keyBlock.map { $0 ^ 0x36 } + data, sha256: true)
        return digest(keyBlock.map { $0 ^ 0x5C } + inner, sha256: true)
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        _ = bytes.withUnsafeMutableBufferPointer { kvm_RAND_bytes($0.baseAddress, Int32(count)) }
        return bytes
    }
}
