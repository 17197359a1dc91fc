// JPEG helpers for frames: the size from the frame header without decoding, and decoding /
// encoding with libjpeg-turbo's TurboJPEG 2.x API (Debian 12 libturbojpeg0-dev:
// tjInitDecompress, tjDecompressHeader3, tjDecompress2, tjCompress2).

internal import CTurboJPEG

/// 8-bit RGB pixels, row-major, three bytes per pixel, no row padding.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public let pixels: [UInt8]

    /// Nil unless `pixels` holds exactly `width * height * 3` bytes and both sides are positive.
    public init?(width: Int, height: Int, pixels: [UInt8]) {
        guard width > 0, height > 0, width <= JPEGCodec.maximumSide, height <= JPEGCodec.maximumSide,
            pixels.count == width * height * 3
        else { return nil }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The `r, g, b` of pixel (`x`, `y`); nil outside the image.
    public func pixel(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8)? {
        guard x >= 0, y >= 0, x < width, y < height else { return nil }
        let o = (y * width + x) * 3
        return (pixels[o], pixels[o + 1], pixels[o + 2])
    }
}

public enum JPEGCodec {
    /// Largest width or height accepted (the NanoKVM captures at most 1920×1080).
    public static let maximumSide = 8192

    /// Width and height from the JPEG's SOFn header, without decoding; nil when the bytes are
    /// not a JPEG or the header is missing or cut off.
    public static func dimensions(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        bytes.withUnsafeBufferPointer { dimensions($0) }
    }

    static func dimensions(_ bytes: UnsafeBufferPointer<UInt8>) -> (width: Int, height: Int)? {
        let count = bytes.count
        guard count > 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return nil }
        var index = 2
        while index + 3 < count {
            guard bytes[index] == 0xFF else { return nil }  // segments follow each other directly
            let marker = bytes[index + 1]
            if marker == 0xFF { index += 1; continue }  // fill byte
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { index += 2; continue }
            if marker == 0xD8 || marker == 0xD9 || marker == 0xDA || marker == 0x00 { return nil }
            let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            guard length >= 2 else { return nil }
            // SOF0…SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            if (0xC0...0xCF).contains(marker), marker != 0xC4, marker != 0xC8, marker != 0xCC {
                guard length >= 8, index + 8 < count else { return nil }
                let height = Int(bytes[index + 5]) << 8 | Int(bytes[index + 6])
                let width = Int(bytes[index + 7]) << 8 | Int(bytes[index + 8])
                guard width > 0, height > 0 else { return nil }
                return (width, height)
            }
            index += 2 + length
        }
        return nil
    }

    /// Decodes to RGB. Raises `protocol` when the bytes cannot be decoded. A warning from
    /// libjpeg (e.g. extraneous bytes before a marker) still yields the image, as browsers do.
    public static func decode(_ jpeg: [UInt8]) throws(NanoKVMError) -> RGBImage {
        guard let handle = tjInitDecompress() else {
            throw NanoKVMError(.protocol, "cannot start the JPEG decoder")
        }
        defer { tjDestroy(handle) }
        var width: Int32 = 0
        var height: Int32 = 0
        var subsampling: Int32 = 0
        var colorspace: Int32 = 0
        let header = jpeg.withUnsafeBufferPointer { source in
            tjDecompressHeader3(handle, source.baseAddress, UInt(source.count), &width, &height, &subsampling, &colorspace)
        }
        guard header == 0 else {
            throw NanoKVMError(.protocol, "undecodable JPEG: \(errorText(handle))")
        }
        guard width > 0, height > 0, Int(width) <= maximumSide, Int(height) <= maximumSide else {
            throw NanoKVMError(.protocol, "JPEG size \(width)x\(height) is out of range")
        }
        let w = Int(width)
        let h = Int(height)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        let result = pixels.withUnsafeMutableBufferPointer { destination in
            jpeg.withUnsafeBufferPointer { source in
                tjDecompress2(
                    handle, source.baseAddress, UInt(source.count), destination.baseAddress, width, 0, height,
                    Int32(TJPF_RGB.rawValue), 0)
            }
        }
        if result != 0 && tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) {
            throw NanoKVMError(.protocol, "undecodable JPEG: \(errorText(handle))")
        }
        guard let image = RGBImage(width: w, height: h, pixels: pixels) else {
            throw NanoKVMError(.protocol, "JPEG size \(width)x\(height) is out of range")
        }
        return image
    }

    /// Encodes RGB pixels: 4:4:4 chroma by default (text stays sharp), or 4:2:0 as the device's
    /// encoder does. `quality` 1…100.
    public static func encode(_ image: RGBImage, quality: Int = 92, chroma420: Bool = false) throws(NanoKVMError) -> [UInt8] {
        guard let handle = tjInitCompress() else {
            throw NanoKVMError(.protocol, "cannot start the JPEG encoder")
        }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let result = image.pixels.withUnsafeBufferPointer { source in
            tjCompress2(
                handle, source.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue), &buffer, &size,
                Int32(chroma420 ? TJSAMP_420.rawValue : TJSAMP_444.rawValue), Int32(min(max(quality, 1), 100)), 0)
        }
        defer { if let buffer { tjFree(buffer) } }
        guard result == 0, let buffer else {
            throw NanoKVMError(.protocol, "JPEG encoding failed: \(errorText(handle))")
        }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }

    private static func errorText(_ handle: tjhandle) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "unknown error" }
        return String(cString: text)
    }
}
