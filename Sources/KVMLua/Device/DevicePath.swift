import NanoKVM

/// `{device}` in the paths scripts write to (screenshots, frames, recordings): replaced by the
/// device's name, so one script run on a fleet leaves one file per device without building
/// names itself. The file's directory is created when missing (`shots/{device}.png`).
enum DevicePath {
    static let placeholder = "{device}"

    /// `path` with `{device}` replaced by `deviceName` (made safe as one path component).
    static func expand(_ path: String, deviceName: String?) throws(NanoKVMError) -> String {
        guard path.contains(placeholder) else { return path }
        guard let deviceName else {
            throw NanoKVMError(.usage, "\(placeholder) in '\(path)' needs a frame that came from a device")
        }
        let expanded = path.replacing(placeholder, with: component(deviceName))
        if let slash = expanded.lastIndex(of: "/"), slash != expanded.startIndex {
            let directory = String(expanded[..<slash])
            try Sandbox.checkWrite(directory)
            guard FileSystem.makeDirectories(directory, mode: 0o755) else {
                throw NanoKVMError(.usage, "cannot create the directory \(directory) for '\(path)'")
            }
        }
        return expanded
    }

    /// A device name as a file name: letters, digits, `.`, `-`, `_` and `:` kept, the rest `_`.
    static func component(_ name: String) -> String {
        let safe = String(
            name.unicodeScalars.map { scalar -> Character in
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", ".", "-", "_", ":": Character(scalar)
                default: "_"
                }
            })
        return safe == "." || safe == ".." ? "_" : safe
    }
}
