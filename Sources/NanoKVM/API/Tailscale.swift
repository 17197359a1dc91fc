// Tailscale extension (protocol §6.7): `/api/extensions/tailscale` from 2.1.6, before that
// `/api/network/tailscale` with a `status` key and (≤2.1.3) up/down through POST …/status.

public enum TailscaleState: String, Sendable {
    case notInstalled = "notInstall"
    case notRunning
    case notLoggedIn = "notLogin"
    case stopped
    case running
}

public struct TailscaleStatus: Sendable, Equatable {
    public var state: TailscaleState
    /// Host name in the tailnet.
    public var name: String
    /// Last IPv4 address of the node.
    public var ip: String
    /// Tailnet (account) name.
    public var account: String
}

public struct TailscaleAPI: Sendable {
    let client: NanoKVMClient

    var modern: Bool { client.profile.atLeast(2, 1, 6) }

    public func status() async throws(NanoKVMError) -> TailscaleStatus {
        let endpoint: APIEndpoint = modern ? .tailscaleStatus : .tailscaleStatusLegacy
        let data = try await client.call(endpoint)
        let key = client.profile.tailscaleStateKey
        return try client.read(data, endpoint) { reader throws(NanoKVMError) in
            let text = try reader.string(key)
            guard let state = TailscaleState(rawValue: text) else { throw reader.fail(key, "a known Tailscale state") }
            return TailscaleStatus(
                state: state, name: try reader.optionalString("name") ?? "", ip: try reader.optionalString("ip") ?? "",
                account: try reader.optionalString("account") ?? "")
        }
    }

    /// Downloads and installs Tailscale on the device (slow; needs internet).
    public func install() async throws(NanoKVMError) {
        try await client.call(modern ? .tailscaleInstall : .tailscaleInstallLegacy, timeout: client.timeout + .seconds(600))
    }

    public func uninstall() async throws(NanoKVMError) {
        try await client.call(modern ? .tailscaleUninstall : .tailscaleUninstallLegacy, timeout: client.timeout + .seconds(60))
    }

    /// Starts the daemon (2.1.6+).
    public func start() async throws(NanoKVMError) { try await client.call(.tailscaleStart, timeout: client.timeout + .seconds(30)) }

    public func stop() async throws(NanoKVMError) {
        try await client.call(modern ? .tailscaleStop : .tailscaleStopLegacy, timeout: client.timeout + .seconds(30))
    }

    public func restart() async throws(NanoKVMError) {
        try await client.call(modern ? .tailscaleRestart : .tailscaleRestartLegacy, timeout: client.timeout + .seconds(30))
    }

    public func up() async throws(NanoKVMError) { try await command("up") }
    public func down() async throws(NanoKVMError) { try await command("down") }

    func command(_ verb: String) async throws(NanoKVMError) {
        if modern {
            try await client.call(verb == "up" ? .tailscaleUp : .tailscaleDown, timeout: client.timeout + .seconds(30))
        } else if client.profile.atLeast(2, 1, 4) {
            try await client.call(verb == "up" ? .tailscaleUpLegacy : .tailscaleDownLegacy, timeout: client.timeout + .seconds(30))
        } else {
            try await client.call(.tailscaleCommandLegacy, body: .json(["command": .string(verb)]), timeout: client.timeout + .seconds(30))
        }
    }

    /// Starts a login and returns the URL to open in a browser; nil when already logged in.
    public func login() async throws(NanoKVMError) -> String? {
        let endpoint: APIEndpoint = modern ? .tailscaleLogin : .tailscaleLoginLegacy
        let data = try await client.call(endpoint, timeout: client.timeout + .seconds(30))
        let url = try client.read(data, endpoint) { reader throws(NanoKVMError) in try reader.optionalString("url") ?? "" }
        return url.isEmpty ? nil : url
    }

    public func logout() async throws(NanoKVMError) {
        try await client.call(modern ? .tailscaleLogout : .tailscaleLogoutLegacy, timeout: client.timeout + .seconds(30))
    }
}

extension NanoKVMClient {
    public var tailscale: TailscaleAPI { TailscaleAPI(client: self) }
}
