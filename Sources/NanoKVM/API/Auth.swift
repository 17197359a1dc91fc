// Account, password and logout (protocol §4, §6.1), and user management on the multi-user
// firmware (§5). Every password field goes through PasswordObfuscation.

public enum UserRole: String, Sendable {
    case admin
    case user
}

public struct Account: Sendable, Equatable {
    public var username: String
    /// Multi-user firmware only.
    public var role: UserRole?
}

public struct UserInfo: Sendable, Equatable {
    public var username: String
    public var role: UserRole
    public var enabled: Bool
    /// The device owner account.
    public var systemAccount: Bool
}

public struct AuthAPI: Sendable {
    let client: NanoKVMClient

    /// The logged-in account (2.1.4+).
    public func account() async throws(NanoKVMError) -> Account {
        let data = try await client.call(.account)
        return try client.read(data, .account) { reader throws(NanoKVMError) in
            let role = try reader.optionalString("role")
            return Account(username: try reader.string("username"), role: role.flatMap(UserRole.init(rawValue:)))
        }
    }

    /// False while the account still has the default password (2.1.1+).
    public func isPasswordUpdated() async throws(NanoKVMError) -> Bool {
        let data = try await client.call(.passwordState)
        return try client.read(data, .passwordState) { reader throws(NanoKVMError) in try reader.bool("isUpdated") }
    }

    /// Changes the logged-in account's password. The multi-user firmware needs the current
    /// password and 8–72 bytes, and revokes the session: the client logs in again with the new
    /// password on the next request. Older firmware sends `username` (default: this client's
    /// user; another name renames the account).
    public func changePassword(current: String?, new newPassword: String, username: String? = nil) async throws(NanoKVMError) {
        var body: [(key: String, value: JSONValue)] = []
        if client.profile.changePasswordNeedsCurrentPassword {
            guard let current else {
                throw NanoKVMError(
                    .usage, "this firmware needs the current password to change it", method: "POST",
                    path: APIEndpoint.changePassword.path, device: client.device)
            }
            guard (8...72).contains(newPassword.utf8.count) else {
                throw NanoKVMError(
                    .usage, "the new password must be 8–72 bytes", method: "POST", path: APIEndpoint.changePassword.path,
                    device: client.device)
            }
            body.append(("currentPassword", .string(try PasswordObfuscation.encrypt(current))))
        } else {
            body.append(("username", .string(username ?? client.username)))
        }
        body.append(("password", .string(try PasswordObfuscation.encrypt(newPassword))))
        try await client.call(.changePassword, body: .json(.object(body)))
        await client.session.updateCredentials(
            username: client.profile.changePasswordNeedsCurrentPassword ? nil : username, password: newPassword)
    }

    /// Logs out on the device (2.1.6+). This revokes every session of the user (≤2.5.0: of all
    /// users), the browser's included; to just drop this client's session, call `close()`.
    public func logout() async throws(NanoKVMError) {
        try await client.call(.logout)
        await client.session.forgetToken()
    }
}

/// User management (multi-user firmware, admin role).
public struct UsersAPI: Sendable {
    let client: NanoKVMClient

    public func list() async throws(NanoKVMError) -> [UserInfo] {
        let data = try await client.call(.listUsers)
        return try client.read(data, .listUsers) { reader throws(NanoKVMError) in
            var users: [UserInfo] = []
            for item in try reader.objects("users") {
                let roleText = try item.string("role")
                guard let role = UserRole(rawValue: roleText) else { throw item.fail("role", "admin or user") }
                users.append(UserInfo(
                    username: try item.string("username"), role: role, enabled: try item.bool("enabled"),
                    systemAccount: try item.optionalBool("systemAccount") ?? false))
            }
            return users
        }
    }

    public func create(username: String, password: String, role: UserRole = .user) async throws(NanoKVMError) {
        try checkUsername(username, .createUser)
        guard (8...72).contains(password.utf8.count) else {
            throw NanoKVMError(.usage, "passwords must be 8–72 bytes", method: "POST", path: APIEndpoint.createUser.path, device: client.device)
        }
        let body: JSONValue = [
            "username": .string(username), "password": .string(try PasswordObfuscation.encrypt(password)), "role": .string(role.rawValue),
        ]
        try await client.call(.createUser, body: .json(body))
    }

    /// Changes role and/or enabled state (at least one); revokes that user's sessions.
    public func update(username: String, role: UserRole? = nil, enabled: Bool? = nil) async throws(NanoKVMError) {
        try checkUsername(username, .updateUser)
        var body: [(key: String, value: JSONValue)] = []
        if let role { body.append(("role", .string(role.rawValue))) }
        if let enabled { body.append(("enabled", .bool(enabled))) }
        guard !body.isEmpty else {
            throw NanoKVMError(.usage, "give a role or an enabled state", method: "PUT", path: APIEndpoint.updateUser.path, device: client.device)
        }
        try await client.call(.updateUser, path: "/api/auth/users/\(URLEncoding.encodePathSegment(username))", body: .json(.object(body)))
    }

    public func delete(username: String) async throws(NanoKVMError) {
        try checkUsername(username, .deleteUser)
        try await client.call(.deleteUser, path: "/api/auth/users/\(URLEncoding.encodePathSegment(username))")
    }

    /// Sets another user's password (the owner account must change its own).
    public func resetPassword(username: String, password: String) async throws(NanoKVMError) {
        try checkUsername(username, .resetUserPassword)
        guard (8...72).contains(password.utf8.count) else {
            throw NanoKVMError(.usage, "passwords must be 8–72 bytes", method: "POST", path: APIEndpoint.resetUserPassword.path, device: client.device)
        }
        try await client.call(
            .resetUserPassword, path: "/api/auth/users/\(URLEncoding.encodePathSegment(username))/password",
            body: .json(["password": .string(try PasswordObfuscation.encrypt(password))]))
    }

    /// The device's rule: first character a letter or digit, then up to 31 of `[A-Za-z0-9_.-]`.
    func checkUsername(_ name: String, _ endpoint: APIEndpoint) throws(NanoKVMError) {
        let scalars = Array(name.unicodeScalars)
        func allowed(_ s: Unicode.Scalar, first: Bool) -> Bool {
            guard s.isASCII else { return false }
            if s.properties.isAlphabetic || ("0"..."9").contains(s) { return true }
            return !first && (s == "_" || s == "." || s == "-")
        }
        guard (1...32).contains(scalars.count), allowed(scalars[0], first: true),
            scalars.dropFirst().allSatisfy({ allowed($0, first: false) })
        else {
            throw NanoKVMError(
                .usage, "user names are 1–32 letters, digits, '.', '_' or '-', starting with a letter or digit: '\(name)'",
                method: endpoint.method, path: endpoint.path, device: client.device)
        }
    }
}

extension NanoKVMClient {
    public var auth: AuthAPI { AuthAPI(client: self) }
    public var users: UsersAPI { UsersAPI(client: self) }
}
