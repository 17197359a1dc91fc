// Sessions: HS256 JWTs with the claims of the generation (§4.4), signed with a secret drawn at
// every start (so a simulated restart invalidates every token), validated per request.

import Foundation
import NanoKVM

struct Principal: Sendable {
    var username: String
    var role: SimulatorRole
    var tokenVersion: UInt64
    /// The token's expiry (nil with authentication disabled).
    var expiresAt: Date?
}

extension Device {
    func issueToken(for username: String) -> String? {
        let (secret, version) = state.withLock { s -> ([UInt8], UInt64) in
            (s.jwtSecret, s.users[username]?.tokenVersion ?? 1)
        }
        let now = Date()
        let expiry = Int64(now.timeIntervalSince1970 + Double(configuration.tokenLifetime.components.seconds))
        let claims: JSONValue
        if profile.multiUser {
            claims = [
                "username": .string(username), "tokenVersion": .integer(Int64(version)), "sub": .string(username),
                "exp": .integer(expiry), "iat": .integer(Int64(now.timeIntervalSince1970)),
            ]
        } else {
            claims = ["username": .string(username), "exp": .integer(expiry)]
        }
        let header = GoBase64.encodeURL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = GoBase64.encodeURL(GoJSON.encode(claims))
        let signingInput = header + "." + payload
        let signature = GoBase64.encodeURL(DeviceCrypto.hmacSHA256(key: secret, data: Array(signingInput.utf8)))
        return signingInput + "." + signature
    }

    /// The session a token stands for, or nil (expired, forged, old secret, revoked user).
    func validate(token: String) -> Principal? {
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3,
            let headerBytes = GoBase64.decodeURL(String(segments[0])),
            let header = try? JSONValue.parse(bytes: headerBytes), header["alg"]?.stringValue == "HS256",
            let payloadBytes = GoBase64.decodeURL(String(segments[1])),
            let claims = try? JSONValue.parse(bytes: payloadBytes),
            let signature = GoBase64.decodeURL(String(segments[2]))
        else { return nil }
        let secret = state.withLock { $0.jwtSecret }
        let expected = DeviceCrypto.hmacSHA256(key: secret, data: Array("\(segments[0]).\(segments[1])".utf8))
        guard expected == signature else { return nil }
        guard let exp = claims["exp"]?.doubleValue, exp > Date().timeIntervalSince1970 else { return nil }
        let username = claims["username"]?.stringValue ?? ""
        let expiry = Date(timeIntervalSince1970: exp)
        if profile.multiUser {
            guard !username.isEmpty, claims["sub"]?.stringValue == username,
                let version = claims["tokenVersion"]?.intValue, version > 0
            else { return nil }
            return state.withLock { s -> Principal? in
                guard let user = s.users[username], user.enabled, user.tokenVersion == UInt64(version) else { return nil }
                return Principal(username: username, role: user.role, tokenVersion: UInt64(version), expiresAt: expiry)
            }
        }
        // ≤2.5.0: signature and expiry only; the single account has every right.
        return Principal(username: username, role: .admin, tokenVersion: 0, expiresAt: expiry)
    }

    /// The request's session: the cookie's token, or the built-in admin when authentication is off.
    func authenticate(_ request: SimRequest) -> Principal? {
        if configuration.authenticationDisabled {
            return Principal(username: "admin", role: .admin, tokenVersion: 0, expiresAt: nil)
        }
        guard let token = request.cookie("nano-kvm-token") else { return nil }
        return validate(token: token)
    }

    /// Whether a session that was valid when a stream started still is (main cuts streams).
    func sessionStillValid(_ request: SimRequest) -> Bool {
        guard profile.multiUser else { return true }
        return authenticate(request) != nil
    }

    /// A simulated service restart: a new JWT secret, so every token is rejected.
    func rotateSecret() {
        state.withLock { $0.jwtSecret = DeviceCrypto.randomBytes(64) }
    }

    /// main: bump a user's token version (logout, password change, role change).
    func revokeSessions(of username: String) {
        state.withLock { s in
            s.users[username]?.tokenVersion += 1
        }
    }
}
