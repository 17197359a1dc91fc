// The one error type of the client library. Its fields are those of a Lua `kvm.Error`
// (../shared/lua-api.md, "Errors"); the Lua module copies them one to one.

public struct NanoKVMError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// Bad credentials, login refused, lockout.
        case auth
        /// HTTP 403 (role).
        case permission
        /// The device answered with a non-zero `code`, or HTTP 5xx.
        case api
        /// Connection refused/reset, TLS failure, DNS.
        case transport
        /// The answer is not what the protocol says (malformed JSON, bad multipart).
        case `protocol`
        /// A request or a wait took too long.
        case timeout
        /// The firmware generation lacks it (raised without sending anything).
        case unsupported
        /// Bad arguments from the caller.
        case usage
        /// Cancelled by the caller (Ctrl-C, task cancel).
        case cancelled
    }

    public var kind: Kind
    /// Human-readable message: the device's `msg` for `api`, otherwise our own words.
    public var message: String
    /// The device's envelope `code`, when there was one.
    public var code: Int?
    /// HTTP status, when there was a response.
    public var status: Int?
    /// HTTP method and path of the request, when the error belongs to one.
    public var method: String?
    public var path: String?
    /// Base URL of the device.
    public var device: String?

    public init(
        _ kind: Kind, _ message: String, code: Int? = nil, status: Int? = nil,
        method: String? = nil, path: String? = nil, device: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.code = code
        self.status = status
        self.method = method
        self.path = path
        self.device = device
    }

    /// One line, e.g. `POST /api/vm/gpio: invalid parameters (code -1)`. The Lua
    /// `__tostring` prefixes it with `kvm: `.
    public var description: String {
        var line = ""
        if let method, let path { line += "\(method) \(path): " } else if let path { line += "\(path): " }
        line += message
        if let code { line += " (code \(code))" } else if let status, kind == .api || kind == .protocol { line += " (HTTP \(status))" }
        return line
    }
}
