import CLua
import LuaBridge
import NanoKVM

#if canImport(Glibc)
    import Glibc
#endif

/// One video frame (a JPEG from the MJPEG stream): the Lua `Frame`.
final class FrameHandle: LuaSendableObject {
    let jpeg: [UInt8]
    /// Monotonic seconds when it was received.
    let time: Double
    let width: Int
    let height: Int

    init(jpeg: [UInt8], time: Double) {
        self.jpeg = jpeg
        self.time = time
        let size = JPEGHeader.dimensions(jpeg)
        width = size?.width ?? 0
        height = size?.height ?? 0
    }

    static let typeName = "kvm.Frame"
}

/// Reads a JPEG's size from its frame header, without decoding anything.
enum JPEGHeader {
    static func dimensions(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard bytes.count > 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return nil }
        var index = 2
        while index + 3 < bytes.count {
            guard bytes[index] == 0xFF else { index += 1; continue }
            let marker = bytes[index + 1]
            if marker == 0xFF { index += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { index += 2; continue }
            if marker == 0xD9 || marker == 0xDA { return nil }  // end of image or start of scan before a frame header
            let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            guard length >= 2 else { return nil }
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            if (0xC0...0xCF).contains(marker), marker != 0xC4, marker != 0xC8, marker != 0xCC {
                guard index + 8 < bytes.count else { return nil }
                let height = Int(bytes[index + 5]) << 8 | Int(bytes[index + 6])
                let width = Int(bytes[index + 7]) << 8 | Int(bytes[index + 8])
                return (width, height)
            }
            index += 2 + length
        }
        return nil
    }
}

enum ScreenBindings {
    static func register(in runtime: LuaRuntime) {
        var b = MethodBuilder<FrameHandle>(typeName: FrameHandle.typeName, prefix: "f:")
        b.add("save", args: "path", "Saves the frame: `.jpg`/`.jpeg` as received (no re-encoding).") { call, frame in
            let path = try call.string(2)
            try saveJPEG(frame.jpeg, to: path, call: call)
            return .none
        }
        b.add("jpeg", returns: "string", "The JPEG bytes as received.") { call, frame in
            call.returning(.bytes(frame.jpeg))
        }
        runtime.registerType(
            FrameHandle.self, name: FrameHandle.typeName, methods: b.specs,
            properties: [
                "width": { frame, stack in stack.push(.int(frame.width)) },
                "height": { frame, stack in stack.push(.int(frame.height)) },
                "time": { frame, stack in stack.push(.number(frame.time)) },
                "size": { frame, stack in stack.push(.int(frame.jpeg.count)) },
            ],
            tostring: { "kvm.Frame \($0.width)x\($0.height) (\($0.jpeg.count) bytes)" })
    }

    static func saveJPEG(_ bytes: [UInt8], to path: String, call: LuaCall) throws {
        let lower = path.lowercased()
        guard lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") else {
            throw call.argumentError(2, "the file name must end in .jpg or .jpeg")
        }
        try Sandbox.checkWrite(path)
        try writeFile(bytes, path)
    }

    /// `dev:screenshot([path])`: the next frame of the stream.
    static func screenshot(_ call: LuaCall, _ device: DeviceHandle) throws -> LuaReturn {
        let path = try call.optionalString(2)
        if let path {
            let lower = path.lowercased()
            guard lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") else {
                throw call.argumentError(2, "the file name must end in .jpg or .jpeg")
            }
            try Sandbox.checkWrite(path)
        }
        let client = device.client
        return .await(
            .async(
                { () async throws -> FrameHandle in
                    let stream = client.stream.mjpeg(MJPEGStreamOptions(stallTimeout: .seconds(10), bufferedFrames: 1))
                    for try await frame in stream {
                        if let path { try writeFile(frame.jpeg, path) }
                        return FrameHandle(jpeg: frame.jpeg, time: frame.receivedAt)
                    }
                    throw NanoKVMError(.protocol, "the video stream ended before a frame arrived", device: client.baseURL)
                },
                push: { frame, stack in
                    LuaRuntime.owning(stack.L)?.push(object: frame, on: stack.L)
                    return 1
                }))
    }

    static func writeFile(_ bytes: [UInt8], _ path: String) throws(NanoKVMError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw NanoKVMError(.usage, "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { throw NanoKVMError(.usage, "cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += written
        }
    }
}
