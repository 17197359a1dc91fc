// Disk and CD-ROM images in /data (protocol §6.4). 2.0.x uses `/api/storage/images…`.

public struct StorageAPI: Sendable {
    let client: NanoKVMClient

    /// Absolute paths of the `.iso`/`.img` files under /data.
    public func images() async throws(NanoKVMError) -> [String] {
        let endpoint: APIEndpoint = client.profile.isClosedSourceGeneration ? .imagesLegacy : .images
        let data = try await client.call(endpoint)
        return try client.read(data, endpoint) { reader throws(NanoKVMError) in try reader.strings("files") }
    }

    /// The mounted image's path, nil when nothing is mounted.
    public func mounted() async throws(NanoKVMError) -> String? {
        let endpoint: APIEndpoint = client.profile.isClosedSourceGeneration ? .mountedImageLegacy : .mountedImage
        let data = try await client.call(endpoint)
        let file = try client.read(data, endpoint) { reader throws(NanoKVMError) in try reader.optionalString("file") ?? "" }
        return file.isEmpty ? nil : file
    }

    /// Mounts `path` as a USB disk or, with `cdrom: true` (2.2.1+), as a read-only CD-ROM.
    /// A disk mount keeps the previous CD-ROM flags on the device, so switching from a CD-ROM
    /// to a disk unmounts first.
    public func mount(_ path: String, cdrom: Bool = false) async throws(NanoKVMError) {
        guard !path.isEmpty else {
            throw NanoKVMError(.usage, "image path is empty (use unmount())", method: "POST", path: APIEndpoint.mountImage.path, device: client.device)
        }
        guard client.profile.mountSupportsCDROM else {
            if cdrom { throw client.unsupported(.mountImage, "mounting as CD-ROM needs firmware 2.2.1 or later") }
            try await client.call(.mountImage, body: .json(["file": .string(path)]), timeout: client.timeout + .seconds(10))
            return
        }
        if !cdrom, try await cdromMode() {
            try await unmount()
        }
        try await client.call(
            .mountImage, body: .json(["file": .string(path), "cdrom": .bool(cdrom)]), timeout: client.timeout + .seconds(10))
    }

    /// Detaches the image (and resets the CD-ROM flags).
    public func unmount() async throws(NanoKVMError) {
        var body: [(key: String, value: JSONValue)] = [("file", .string(""))]
        if client.profile.mountSupportsCDROM { body.append(("cdrom", .bool(false))) }
        try await client.call(.mountImage, body: .json(.object(body)), timeout: client.timeout + .seconds(10))
    }

    /// Whether the mass-storage function currently presents a CD-ROM (2.2.1+).
    public func cdromMode() async throws(NanoKVMError) -> Bool {
        let data = try await client.call(.cdromState)
        return try client.read(data, .cdromState) { reader throws(NanoKVMError) in try reader.int("cdrom") != 0 }
    }

    /// Deletes an image file (absolute path under /data ending in .iso or .img; 2.3.0+).
    public func delete(_ path: String) async throws(NanoKVMError) {
        let lower = path.lowercased()
        guard path.hasPrefix("/data"), lower.hasSuffix(".iso") || lower.hasSuffix(".img") else {
            throw NanoKVMError(
                .usage, "image path must be under /data and end in .iso or .img: '\(path)'", method: "POST",
                path: APIEndpoint.deleteImage.path, device: client.device)
        }
        try await client.call(.deleteImage, body: .json(["file": .string(path)]))
    }
}

extension NanoKVMClient {
    public var storage: StorageAPI { StorageAPI(client: self) }
}
