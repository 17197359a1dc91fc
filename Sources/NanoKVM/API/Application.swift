// Application updates and image downloads (protocol §6.8). 2.0.x calls the application
// "firmware" (`/api/firmware/*`).

public struct ApplicationVersions: Sendable, Equatable {
    public var current: String
    public var latest: String
}

public struct UpdateServerSettings: Sendable, Equatable {
    public var enabled: Bool
    public var url: String
}

public enum DownloadState: String, Sendable {
    case idle
    case inProgress = "in_progress"
    case success
    case failed
    case checksumFailed = "checksum_failed"
}

public struct DownloadStatus: Sendable, Equatable {
    public var state: DownloadState
    /// The URL (or file) being downloaded.
    public var file: String
    /// Progress as the device formats it (`"42.17%"`), "" when unknown.
    public var percentage: String

    init(reader: DataReader) throws(NanoKVMError) {
        let text = try reader.string("status")
        guard let state = DownloadState(rawValue: text) else { throw reader.fail("status", "a known download state") }
        self.state = state
        self.file = try reader.optionalString("file") ?? ""
        self.percentage = try reader.optionalString("percentage") ?? ""
    }
}

public struct ApplicationAPI: Sendable {
    let client: NanoKVMClient

    var closedSource: Bool { client.profile.isClosedSourceGeneration }

    /// Installed and newest version. The device asks the update server on the internet, so
    /// this fails (`api`, code −1) on a device without internet access.
    public func versions() async throws(NanoKVMError) -> ApplicationVersions {
        let endpoint: APIEndpoint = closedSource ? .firmwareVersion : .applicationVersion
        let data = try await client.call(endpoint, timeout: client.timeout + .seconds(20))
        return try client.read(data, endpoint) { reader throws(NanoKVMError) in
            ApplicationVersions(current: try reader.string("current"), latest: try reader.string("latest"))
        }
    }

    /// Downloads and installs the newest version (blocks for minutes; the service restarts
    /// about a second after answering). `timeout` defaults to 15 minutes like the web UI.
    public func update(timeout: Duration = .seconds(900)) async throws(NanoKVMError) {
        try await client.call(closedSource ? .firmwareUpdate : .applicationUpdate, timeout: timeout)
    }

    /// Installs an uploaded `nanokvm_<x.y.z>.tar.gz` (2.3.1+); `sha256` (64 hex) is checked by
    /// the multi-user firmware.
    public func updateOffline(archive: [UInt8], filename: String, sha256: String? = nil, timeout: Duration = .seconds(900)) async throws(NanoKVMError) {
        var form = MultipartForm()
        form.addFile(field: "file", filename: filename, contentType: "application/gzip", contents: archive)
        var headers: [(name: String, value: String)] = []
        if let sha256 { headers.append((name: "X-SHA256-Checksum", value: sha256.lowercased())) }
        try await client.call(
            .offlineUpdate, body: .bytes(form.finished(), contentType: form.contentType), timeout: timeout, headers: headers)
    }

    /// Whether the preview (beta) update channel is on (2.2.5+).
    public func previewChannel() async throws(NanoKVMError) -> Bool {
        let data = try await client.call(.previewChannel)
        return try client.read(data, .previewChannel) { reader throws(NanoKVMError) in try reader.bool("enabled") }
    }

    public func setPreviewChannel(enabled: Bool) async throws(NanoKVMError) {
        // The request key is `enable`, not `enabled` (§6.8).
        try await client.call(.setPreviewChannel, body: .json(["enable": .bool(enabled)]))
    }

    /// Custom update server (multi-user firmware only).
    public func updateServer() async throws(NanoKVMError) -> UpdateServerSettings {
        let data = try await client.call(.updateServer)
        return try client.read(data, .updateServer) { reader throws(NanoKVMError) in
            UpdateServerSettings(enabled: try reader.bool("enabled"), url: try reader.optionalString("url") ?? "")
        }
    }

    @discardableResult
    public func setUpdateServer(enabled: Bool, url: String = "") async throws(NanoKVMError) -> UpdateServerSettings {
        let data = try await client.call(.setUpdateServer, body: .json(["enabled": .bool(enabled), "url": .string(url)]))
        if data.isNull { return UpdateServerSettings(enabled: enabled, url: url) }
        return try client.read(data, .setUpdateServer) { reader throws(NanoKVMError) in
            UpdateServerSettings(enabled: try reader.bool("enabled"), url: try reader.optionalString("url") ?? "")
        }
    }
}

public struct DownloadsAPI: Sendable {
    let client: NanoKVMClient

    /// Whether /data is writable for downloads (2.1.6+).
    public func enabled() async throws(NanoKVMError) -> Bool {
        let data = try await client.call(.downloadEnabled)
        return try client.read(data, .downloadEnabled) { reader throws(NanoKVMError) in try reader.bool("enabled") }
    }

    /// Starts downloading an image from `url` into /data (2.1.6+; `sha256` 2.5.0+). The device
    /// downloads in the background; poll `status()`.
    @discardableResult
    public func downloadImage(from url: String, sha256: String? = nil) async throws(NanoKVMError) -> DownloadStatus {
        let lower = url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            throw NanoKVMError(.usage, "image URL must be http(s): '\(url)'", method: "POST", path: APIEndpoint.downloadImage.path, device: client.device)
        }
        var body: [(key: String, value: JSONValue)] = [("file", .string(url))]
        if let sha256 {
            guard client.profile.atLeast(2, 5, 0) else {
                throw client.unsupported(.downloadImage, "a download checksum needs firmware 2.5.0 or later")
            }
            body.append(("sha256sum", .string(sha256.lowercased())))
        }
        let envelope = try await client.callEnvelope(.downloadImage, body: .json(.object(body)), timeout: client.timeout + .seconds(20))
        guard envelope.code == 0 else {
            var error = client.apiError(envelope, endpoint: .downloadImage)
            // ≤2.4.3 reports the remote server's HTTP status as a positive code.
            if envelope.code > 0 { error.message = "\(envelope.message) (the image server answered HTTP \(envelope.code))" }
            throw error
        }
        return try client.read(envelope.data, .downloadImage) { reader throws(NanoKVMError) in try DownloadStatus(reader: reader) }
    }

    public func status() async throws(NanoKVMError) -> DownloadStatus {
        let data = try await client.call(.downloadStatus)
        return try client.read(data, .downloadStatus) { reader throws(NanoKVMError) in try DownloadStatus(reader: reader) }
    }

    /// Cancels the running download (2.5.0+).
    public func cancel() async throws(NanoKVMError) { try await client.call(.cancelDownload, timeout: client.timeout + .seconds(10)) }

    /// Uploads an ISO image (name `[A-Za-z0-9._-]+.iso`, 2.3.1+; `sha256` checked from 2.5.0).
    @discardableResult
    public func uploadISO(named name: String, contents: [UInt8], sha256: String? = nil, timeout: Duration = .seconds(1800)) async throws(NanoKVMError) -> DownloadStatus {
        let validName = name.lowercased().hasSuffix(".iso") && name.count > 4
            && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }
        guard validName else {
            throw NanoKVMError(.usage, "ISO name must be letters, digits, '.', '_' or '-' ending in .iso: '\(name)'", method: "POST", path: APIEndpoint.uploadISO.path, device: client.device)
        }
        var form = MultipartForm()
        form.addFile(field: "file", filename: name, contentType: "application/x-iso9660-image", contents: contents)
        var headers: [(name: String, value: String)] = []
        if let sha256 { headers.append((name: "X-SHA256-Sum", value: sha256.lowercased())) }
        let data = try await client.call(.uploadISO, body: .bytes(form.finished(), contentType: form.contentType), timeout: timeout, headers: headers)
        return try client.read(data, .uploadISO) { reader throws(NanoKVMError) in try DownloadStatus(reader: reader) }
    }
}

extension NanoKVMClient {
    public var application: ApplicationAPI { ApplicationAPI(client: self) }
    public var downloads: DownloadsAPI { DownloadsAPI(client: self) }
}
