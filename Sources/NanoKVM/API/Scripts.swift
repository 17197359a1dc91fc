// User scripts in /etc/kvm/scripts (protocol §6.2.5).

public struct ScriptsAPI: Sendable {
    let client: NanoKVMClient

    /// File names of the stored `.sh`/`.py` scripts.
    public func list() async throws(NanoKVMError) -> [String] {
        let data = try await client.call(.scripts)
        return try client.read(data, .scripts) { reader throws(NanoKVMError) in try reader.strings("files") }
    }

    /// Uploads a script; `name` must end in `.sh` or `.py`. Returns the stored file name.
    @discardableResult
    public func upload(name: String, contents: [UInt8]) async throws(NanoKVMError) -> String {
        try Self.checkName(name, client: client, endpoint: .uploadScript)
        var form = MultipartForm()
        form.addFile(field: "file", filename: name, contents: contents)
        let data = try await client.call(.uploadScript, body: .bytes(form.finished(), contentType: form.contentType), timeout: client.timeout * 3)
        return try client.read(data, .uploadScript) { reader throws(NanoKVMError) in try reader.string("file") }
    }

    /// Uploads a script given as text.
    @discardableResult
    public func upload(name: String, text: String) async throws(NanoKVMError) -> String {
        try await upload(name: name, contents: Array(text.utf8))
    }

    /// Runs a script. In the foreground the call returns its combined output once it exited
    /// (the timeout is `timeout`, default 10 minutes); in the background it returns "" at once.
    public func run(name: String, background: Bool = false, timeout: Duration = .seconds(600)) async throws(NanoKVMError) -> String {
        try Self.checkName(name, client: client, endpoint: .runScript)
        let body: JSONValue = ["name": .string(name), "type": .string(background ? "background" : "foreground")]
        let data = try await client.call(.runScript, body: .json(body), timeout: background ? client.timeout : timeout)
        return try client.read(data, .runScript) { reader throws(NanoKVMError) in try reader.optionalString("log") ?? "" }
    }

    public func delete(name: String) async throws(NanoKVMError) {
        try Self.checkName(name, client: client, endpoint: .deleteScript)
        try await client.call(.deleteScript, body: .json(["name": .string(name)]))
    }

    static func checkName(_ name: String, client: NanoKVMClient, endpoint: APIEndpoint) throws(NanoKVMError) {
        let lower = name.lowercased()
        guard !name.isEmpty, !name.contains("/"), lower.hasSuffix(".sh") || lower.hasSuffix(".py") else {
            throw NanoKVMError(
                .usage, "script name must be a file name ending in .sh or .py, got '\(name)'", method: endpoint.method,
                path: endpoint.path, device: client.device)
        }
    }
}

extension NanoKVMClient {
    public var scripts: ScriptsAPI { ScriptsAPI(client: self) }
}
