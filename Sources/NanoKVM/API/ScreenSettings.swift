// Video settings: `POST /api/vm/screen` (protocol §6.2.3). Settings are global, in memory
// only, and cannot be read back.

/// Which encoder the UI says it uses (only recorded by the device; the stream endpoint decides).
public enum VideoEncoding: String, Sendable {
    case mjpeg
    case h264
}

/// One screen setting.
public enum ScreenSetting: Sendable, Equatable {
    /// Output height: 1080, 720, 600, 480, or 0 for the capture's native size.
    case resolution(Int)
    /// Frames per second; the device clamps to 10…60.
    case fps(Int)
    /// ≤100: MJPEG JPEG quality (effective 100/80/60/50); >100: H.264 bitrate in kbit/s.
    case quality(Int)
    /// 2.1.1+.
    case encoding(VideoEncoding)
    /// H.264 key-frame interval in frames (1…100), 2.2.3+.
    case gop(Int)

    var type: String {
        switch self {
        case .resolution: return "resolution"
        case .fps: return "fps"
        case .quality: return "quality"
        case .encoding: return "type"
        case .gop: return "gop"
        }
    }

    var value: Int {
        switch self {
        case .resolution(let v), .fps(let v), .quality(let v), .gop(let v): return v
        case .encoding(let e): return e == .mjpeg ? 0 : 1
        }
    }
}

public struct ScreenAPI: Sendable {
    let client: NanoKVMClient

    public static let resolutions = [0, 1080, 720, 600, 480]

    public func set(_ setting: ScreenSetting) async throws(NanoKVMError) {
        let path = APIEndpoint.screen.path
        func usage(_ message: String) -> NanoKVMError {
            NanoKVMError(.usage, message, method: "POST", path: path, device: client.device)
        }
        switch setting {
        case .resolution(let height):
            guard Self.resolutions.contains(height) else {
                throw usage("resolution must be one of 1080, 720, 600, 480 or 0 (native), got \(height)")
            }
        case .fps(let fps):
            guard (1...120).contains(fps) else { throw usage("fps must be 1–120 (the device clamps to 10–60), got \(fps)") }
        case .quality(let quality):
            guard quality > 0 else { throw usage("quality must be positive, got \(quality)") }
        case .gop(let gop):
            guard (1...100).contains(gop) else { throw usage("gop must be 1–100, got \(gop)") }
            guard client.profile.atLeast(2, 2, 3) else {
                throw client.unsupported(.screen, "the gop setting needs firmware 2.2.3 or later")
            }
        case .encoding:
            guard client.profile.atLeast(2, 1, 1) else {
                throw client.unsupported(.screen, "the type setting needs firmware 2.1.1 or later")
            }
        }
        let body: JSONValue = ["type": .string(setting.type), "value": .integer(Int64(setting.value))]
        try await client.call(.screen, body: .json(body))
    }

    public func setResolution(_ height: Int) async throws(NanoKVMError) { try await set(.resolution(height)) }
    public func setFPS(_ fps: Int) async throws(NanoKVMError) { try await set(.fps(fps)) }
    public func setQuality(_ quality: Int) async throws(NanoKVMError) { try await set(.quality(quality)) }
    public func setEncoding(_ encoding: VideoEncoding) async throws(NanoKVMError) { try await set(.encoding(encoding)) }
    public func setGOP(_ frames: Int) async throws(NanoKVMError) { try await set(.gop(frames)) }
}

extension NanoKVMClient {
    public var screen: ScreenAPI { ScreenAPI(client: self) }

    /// An `unsupported` error for a feature of `endpoint` the firmware lacks (nothing sent).
    func unsupported(_ endpoint: APIEndpoint, _ message: String, path: String? = nil) -> NanoKVMError {
        NanoKVMError(
            .unsupported, "\(message) (device has \(profile.versionString))", method: endpoint.method, path: path ?? endpoint.path,
            device: device)
    }
}
