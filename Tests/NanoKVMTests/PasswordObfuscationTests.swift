import Foundation
import Testing

@testable import NanoKVM

@Suite("Password obfuscation", .timeLimit(.minutes(1)))
struct PasswordObfuscationTests {
    @Test("Protocol §4.1 test vector")
    func testVector() throws {
        let salt: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7]
        #expect(try PasswordObfuscation.encrypt("admin", salt: salt, urlEncoded: false) == "U2FsdGVkX18AAQIDBAUGB7RQW+o4DxJ1XwZq5sFeCig=")
        #expect(try PasswordObfuscation.encrypt("admin", salt: salt) == "U2FsdGVkX18AAQIDBAUGB7RQW%2Bo4DxJ1XwZq5sFeCig%3D")
        let (key, iv) = try PasswordObfuscation.deriveKey(salt: salt)
        #expect(hex(key) == "68c4c5f634526fea9d881610bb426ae2459f0434f624687814318948d791ad16")
        #expect(hex(iv) == "c6f7c398d51a352a6906b5ac0698f8db")
        #expect(try PasswordObfuscation.decrypt("U2FsdGVkX18AAQIDBAUGB7RQW%2Bo4DxJ1XwZq5sFeCig%3D") == "admin")
    }

    @Test("Random salts differ and round-trip", arguments: ["", "admin", "pässwörd €", String(repeating: "x", count: 100), "a+b/c=d"])
    func roundTrip(password: String) throws {
        let first = try PasswordObfuscation.encrypt(password)
        let second = try PasswordObfuscation.encrypt(password)
        #expect(first != second)
        #expect(try PasswordObfuscation.decrypt(first) == password)
        #expect(!first.contains("+") && !first.contains("/") && !first.contains("="))
    }

    @Test("Our output decrypts with the openssl command line")
    func opensslDecryptsOurs() throws {
        for password in ["admin", "Sup3r secret!", "ünïcødé", "x"] {
            let base64 = try PasswordObfuscation.encrypt(password, urlEncoded: false)
            let plain = try runOpenSSL(["enc", "-d", "-aes-256-cbc", "-md", "md5", "-pass", "pass:nanokvm-sipeed-2024", "-base64", "-A"], input: Array((base64).utf8))
            #expect(String(decoding: plain, as: UTF8.self) == password)
        }
    }

    @Test("openssl command line output decrypts with ours")
    func weDecryptOpenSSL() throws {
        for password in ["admin", "Sup3r secret!", "ünïcødé", String(repeating: "long", count: 30)] {
            let output = try runOpenSSL(["enc", "-aes-256-cbc", "-md", "md5", "-salt", "-pass", "pass:nanokvm-sipeed-2024", "-base64", "-A"], input: Array(password.utf8))
            let base64 = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try PasswordObfuscation.decrypt(base64, urlEncoded: false) == password)
            // And in the URL-encoded form the device receives.
            #expect(try PasswordObfuscation.decrypt(URLEncoding.encodeURIComponent(base64)) == password)
        }
    }

    @Test("Fixed-salt output equals openssl with the same salt")
    func sameSaltSameBytes() throws {
        let salt: [UInt8] = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04]
        let output = try runOpenSSL(
            ["enc", "-aes-256-cbc", "-md", "md5", "-S", "deadbeef01020304", "-pass", "pass:nanokvm-sipeed-2024", "-base64", "-A"],
            input: Array("hunter2".utf8))
        // With an explicit -S, OpenSSL 3 prints the ciphertext without the "Salted__" header.
        let ciphertext = Base64.decode(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        let ours = Base64.decode(try PasswordObfuscation.encrypt("hunter2", salt: salt, urlEncoded: false))
        #expect(ciphertext != nil && ciphertext?.isEmpty == false)
        #expect(ours == Array("Salted__".utf8) + salt + (ciphertext ?? []))
    }

    @Test("Bad inputs raise usage, never crash")
    func badInputs() {
        for field in ["", "%zz", "not base64!", "U2FsdGVk", "U2FsdGVkX18AAQIDBAUGBw%3D%3D", "U2FsdGVkX18AAQIDBAUGB7RQW%2Bo4DxJ1XwZq5sFe"] {
            #expect(throws: NanoKVMError.self) { try PasswordObfuscation.decrypt(field) }
        }
        #expect(throws: NanoKVMError.self) { try PasswordObfuscation.encrypt("x", salt: [1, 2, 3]) }
        // A plain '+' is a space to the device (url.QueryUnescape), so the unescaped base64 fails.
        #expect(throws: NanoKVMError.self) { try PasswordObfuscation.decrypt("U2FsdGVkX18AAQIDBAUGB7RQW+o4DxJ1XwZq5sFeCig=") }
    }

    @Test("encodeURIComponent and QueryUnescape")
    func urlEncoding() {
        #expect(URLEncoding.encodeURIComponent("a+b/c=d e~*'()!") == "a%2Bb%2Fc%3Dd%20e~*'()!")
        #expect(URLEncoding.queryUnescape("a%2Bb+c") == "a+b c")
        #expect(URLEncoding.queryUnescape("%4") == nil)
    }

    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}

/// Runs the `openssl` command line with `input` on stdin and returns stdout.
func runOpenSSL(_ arguments: [String], input: [UInt8]) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["openssl"] + arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = FileHandle.nullDevice
    try process.run()
    stdin.fileHandleForWriting.write(Data(input))
    try stdin.fileHandleForWriting.close()
    let data = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw NanoKVMError(.usage, "openssl \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
    }
    return Array(data)
}
