// §4 and §6.1: login (obfuscated password, per-version codes and delays, lockout, token in the
// body or in Set-Cookie), logout, account, password change, users (main).

import Foundation
import NanoKVM

extension Device {
    static let cookieName = "nano-kvm-token"

    func sessionCookie(_ token: String, maxAge: Int, request: SimRequest) -> (String, String) {
        let secure = configuration.generation == .current
            && (request.header("X-Forwarded-Proto")?.lowercased() == "https")
        var value = "\(Self.cookieName)=\(token); Path=/; Max-Age=\(max(maxAge, 0)); HttpOnly"
        if secure { value += "; Secure" }
        value += "; SameSite=Strict"
        return ("Set-Cookie", value)
    }

    private func lockoutActive(_ ip: String) -> Bool {
        guard profile.atLeast("2.3.5"), configuration.loginLockout != nil else { return false }
        return state.withLock { s -> Bool in
            guard var attempt = s.loginAttempts[ip] else { return false }
            if let end = attempt.lockoutEnd {
                if ContinuousClock.now < end { return true }
                attempt.failures = 0
                attempt.lockoutEnd = nil
                s.loginAttempts[ip] = attempt
            }
            return false
        }
    }

    private func recordFailure(_ ip: String) {
        guard profile.atLeast("2.3.5"), let lockout = configuration.loginLockout else { return }
        state.withLock { s in
            var attempt = s.loginAttempts[ip] ?? LoginAttempt()
            let now = ContinuousClock.now
            if let last = attempt.lastFailed, now - last > lockout.duration { attempt.failures = 0 }
            attempt.failures += 1
            attempt.lastFailed = now
            if attempt.failures >= lockout.maxFailures { attempt.lockoutEnd = now + lockout.duration }
            s.loginAttempts[ip] = attempt
        }
    }

    private func loginFailed(_ ip: String) async -> SimResponse {
        state.withLock { $0.failedLoginCount += 1 }
        if profile.loginDelays { await loginDelay(seconds: 2) }
        recordFailure(ip)
        return fail(-2, "invalid username or password")
    }

    func login(_ c: RouteContext) async -> SimResponse {
        if configuration.authenticationDisabled {
            return profile.multiUser ? ok() : ok(["token": "disabled"])
        }
        let ip = c.request.remoteIP
        if lockoutActive(ip) {
            await loginDelay(seconds: 3)
            return fail(-5, "Account locked due to too many failed attempts, please try again later")
        }
        let fields = [GoField("Username", .string, required: true), GoField("Password", .string, required: true)]
        guard case let .success(body) = RequestBinder.bind(c.request, "LoginReq", fields) else {
            if profile.loginDelays { await loginDelay(seconds: 3) }
            return fail(-1, "invalid parameters")
        }
        let username = body.string("Username")
        let password: [UInt8]
        switch DeviceCrypto.decodeDecrypt(body.string("Password")) {
        case .panic:
            return Self.panicked
        case .unescapeError:
            if profile.oldLoginCodes { return fail(-2, "decrypt password failed") }
            return await loginFailed(ip)
        case let .plaintext(bytes):
            password = bytes
        }
        let accepted = state.withLock { s -> Bool in
            guard let user = s.users[username], user.enabled, !password.isEmpty else { return false }
            if !profile.multiUser, !user.systemAccount { return false }
            return Array(user.password.utf8) == password
        }
        guard accepted else {
            if profile.oldLoginCodes {
                state.withLock { $0.failedLoginCount += 1 }
                return fail(-4, "invalid username or password")
            }
            return await loginFailed(ip)
        }
        state.withLock { s in
            s.loginAttempts.removeValue(forKey: ip)
            s.loginCount += 1
        }
        guard let token = issueToken(for: username) else {
            return profile.oldLoginCodes ? fail(-5, "generate token failed") : fail(-3, "generate token failed")
        }
        if profile.multiUser {
            var response = ok()
            response.headers.append(sessionCookie(token, maxAge: Int(configuration.tokenLifetime.components.seconds), request: c.request))
            return response
        }
        return ok(["token": .string(token)])
    }

    func logout(_ c: RouteContext) async -> SimResponse {
        if profile.multiUser {
            if !configuration.authenticationDisabled, let principal = c.principal {
                revokeSessions(of: principal.username)
                events.sessionsRevoked()
            }
            var response = ok()
            response.headers.append(sessionCookie("", maxAge: 0, request: c.request))
            return response
        }
        // 2.1.6–2.5.0 regenerate the JWT secret: every session of every client ends.
        if !configuration.authenticationDisabled { rotateSecret() }
        return ok()
    }

    func account(_ c: RouteContext) async -> SimResponse {
        guard let principal = c.principal else { return fail(-1, "get account failed") }
        if profile.multiUser {
            return ok(["username": .string(principal.username), "role": .string(principal.role.rawValue)])
        }
        let name = state.withLock { s in s.userOrder.first ?? principal.username }
        return ok(["username": .string(configuration.authenticationDisabled ? name : principal.username)])
    }

    func passwordState(_ c: RouteContext) async -> SimResponse {
        if profile.multiUser {
            if configuration.authenticationDisabled { return ok(["isUpdated": true]) }
            guard let principal = c.principal else { return fail(-1, "invalid session") }
            let must = state.withLock { $0.users[principal.username]?.mustChangePassword }
            guard let must else { return fail(-2, "failed to get password state") }
            return ok(["isUpdated": .bool(!must)])
        }
        let updated = state.withLock { s -> Bool in
            guard let owner = s.userOrder.first, let user = s.users[owner] else { return false }
            return user.password != "admin"
        }
        return ok(["isUpdated": .bool(updated)])
    }

    private static func passwordLengthError(_ password: [UInt8]) -> String? {
        (8...72).contains(password.count) ? nil : "password must be between 8 and 72 bytes"
    }

    func changePassword(_ c: RouteContext) async -> SimResponse {
        if profile.multiUser {
            let fields = [
                GoField("CurrentPassword", .string, json: "currentPassword"),
                GoField("Password", .string, json: "password", required: true),
            ]
            guard case let .success(body) = RequestBinder.bind(c.request, "ChangePasswordReq", fields) else {
                return fail(-1, "invalid parameters")
            }
            guard let principal = c.principal else { return fail(-2, "invalid session") }
            let current: [UInt8]
            switch DeviceCrypto.decodeDecrypt(body.string("CurrentPassword")) {
            case .panic: return Self.panicked
            case .unescapeError: return fail(-3, "current password is required")
            case let .plaintext(bytes): current = bytes
            }
            if current.isEmpty { return fail(-3, "current password is required") }
            let matches = state.withLock { Array(($0.users[principal.username]?.password ?? "").utf8) == current }
            guard matches else { return fail(-3, "current password is incorrect") }
            let new: [UInt8]
            switch DeviceCrypto.decodeDecrypt(body.string("Password")) {
            case .panic: return Self.panicked
            case .unescapeError: return fail(-5, "invalid password")
            case let .plaintext(bytes): new = bytes
            }
            if new.isEmpty { return fail(-5, "invalid password") }
            if let problem = Self.passwordLengthError(new) { return fail(-5, problem) }
            state.withLock { s in
                s.users[principal.username]?.password = String(decoding: new, as: UTF8.self)
                s.users[principal.username]?.mustChangePassword = false
                s.users[principal.username]?.tokenVersion += 1
            }
            events.sessionsRevoked()
            var response = ok()
            response.headers.append(sessionCookie("", maxAge: 0, request: c.request))
            return response
        }
        let fields = [GoField("Username", .string, required: true), GoField("Password", .string, required: true)]
        guard case let .success(body) = RequestBinder.bind(c.request, "ChangePasswordReq", fields) else {
            return fail(-1, "invalid parameters")
        }
        let new: [UInt8]
        switch DeviceCrypto.decodeDecrypt(body.string("Password")) {
        case .panic: return Self.panicked
        case .unescapeError: new = []
        case let .plaintext(bytes): new = bytes
        }
        if new.isEmpty, profile.atLeast("2.1.6") { return fail(-2, "invalid password") }
        let username = body.string("Username")
        state.withLock { s in
            guard let owner = s.userOrder.first, var record = s.users.removeValue(forKey: owner) else { return }
            record.password = String(decoding: new, as: UTF8.self)
            record.mustChangePassword = false
            s.users[username] = record
            s.userOrder[0] = username
        }
        return ok()
    }

    // MARK: Users (main)

    func listUsers(_ c: RouteContext) async -> SimResponse {
        let users = state.withLock { s in
            s.userOrder.compactMap { name -> JSONValue? in
                guard let user = s.users[name] else { return nil }
                var members: [(key: String, value: JSONValue)] = [
                    ("username", .string(name)), ("role", .string(user.role.rawValue)), ("enabled", .bool(user.enabled)),
                ]
                if user.systemAccount { members.append(("systemAccount", true)) }
                return .object(members)
            }
        }
        return ok(["users": .array(users)])
    }

    static func validUsername(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard (1...32).contains(scalars.count), let first = scalars.first, first.isASCII,
            first.properties.isAlphabetic || ("0"..."9").contains(first)
        else { return false }
        return scalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    func createUser(_ c: RouteContext) async -> SimResponse {
        let fields = [
            GoField("Username", .string, json: "username", required: true),
            GoField("Password", .string, json: "password", required: true),
            GoField("Role", .string, json: "role", required: true),
        ]
        guard case let .success(body) = RequestBinder.bind(c.request, "CreateUserReq", fields) else {
            return fail(-1, "invalid parameters")
        }
        let password: [UInt8]
        switch DeviceCrypto.decodeDecrypt(body.string("Password")) {
        case .panic: return Self.panicked
        case .unescapeError: return fail(-2, "invalid password")
        case let .plaintext(bytes): password = bytes
        }
        if password.isEmpty { return fail(-2, "invalid password") }
        if let problem = Self.passwordLengthError(password) { return fail(-2, problem) }
        let username = body.string("Username")
        guard Self.validUsername(username) else {
            return fail(-3, "username must be 1-32 characters and contain only letters, numbers, '.', '_' or '-'")
        }
        guard let role = SimulatorRole(rawValue: body.string("Role")) else { return fail(-3, "invalid role") }
        let created = state.withLock { s -> Bool in
            guard s.users[username] == nil else { return false }
            s.users[username] = UserRecord(
                password: String(decoding: password, as: UTF8.self), role: role, enabled: true, mustChangePassword: false,
                systemAccount: false)
            s.userOrder.append(username)
            return true
        }
        return created ? ok() : fail(-3, "username already exists")
    }

    func updateUser(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Role", .optionalString, json: "role"), GoField("Enabled", .optionalBool, json: "enabled")]
        guard case let .success(body) = RequestBinder.bind(c.request, "UpdateUserReq", fields),
            body.optionalString("Role") != nil || body.optionalBool("Enabled") != nil
        else { return fail(-1, "invalid parameters") }
        let target = c.parameters["username"] ?? ""
        let actor = c.principal?.username ?? ""
        let newRole = body.optionalString("Role")
        if let newRole, SimulatorRole(rawValue: newRole) == nil { return fail(-2, "invalid role") }
        let error = state.withLock { s -> String? in
            guard var user = s.users[target] else { return "user not found" }
            let role = newRole.flatMap(SimulatorRole.init(rawValue:)) ?? user.role
            let enabled = body.optionalBool("Enabled") ?? user.enabled
            if target == actor, role != .admin || !enabled { return "administrators cannot disable or demote themselves" }
            if user.systemAccount, role != .admin || !enabled { return "the device owner account must remain an enabled administrator" }
            user.role = role
            user.enabled = enabled
            user.tokenVersion += 1
            s.users[target] = user
            return nil
        }
        if let error { return fail(-2, error) }
        events.sessionsRevoked()
        return ok()
    }

    func deleteUser(_ c: RouteContext) async -> SimResponse {
        let target = c.parameters["username"] ?? ""
        let actor = c.principal?.username ?? ""
        let error = state.withLock { s -> String? in
            if target == actor { return "administrators cannot delete themselves" }
            guard let user = s.users[target] else { return "user not found" }
            if user.systemAccount { return "the device owner account must remain an enabled administrator" }
            s.users.removeValue(forKey: target)
            s.userOrder.removeAll { $0 == target }
            return nil
        }
        if let error { return fail(-1, error) }
        events.sessionsRevoked()
        return ok()
    }

    func resetUserPassword(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("CurrentPassword", .string, json: "currentPassword"), GoField("Password", .string, json: "password", required: true)]
        guard case let .success(body) = RequestBinder.bind(c.request, "ChangePasswordReq", fields) else {
            return fail(-1, "invalid parameters")
        }
        let target = c.parameters["username"] ?? ""
        let system = state.withLock { $0.users[target]?.systemAccount }
        guard let system else { return fail(-2, "user not found") }
        if system { return fail(-3, "the device owner must change its own password") }
        let new: [UInt8]
        switch DeviceCrypto.decodeDecrypt(body.string("Password")) {
        case .panic: return Self.panicked
        case .unescapeError: return fail(-4, "invalid password")
        case let .plaintext(bytes): new = bytes
        }
        if new.isEmpty { return fail(-4, "invalid password") }
        if let problem = Self.passwordLengthError(new) { return fail(-4, problem) }
        state.withLock { s in
            s.users[target]?.password = String(decoding: new, as: UTF8.self)
            s.users[target]?.tokenVersion += 1
        }
        events.sessionsRevoked()
        return ok()
    }
}
