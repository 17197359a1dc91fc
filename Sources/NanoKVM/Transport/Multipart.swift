// multipart/form-data bodies for the upload endpoints (scripts, offline update, ISO upload).

struct MultipartForm {
    let boundary: String
    private(set) var bytes: [UInt8] = []

    init() {
        var random = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        boundary = "kvmlua-" + String((0..<24).map { _ in letters[Int(random.next() % UInt64(letters.count))] })
    }

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    /// Adds a file field. Quotes and line breaks in the file name are replaced (they would
    /// break the header).
    mutating func addFile(field: String, filename: String, contentType: String = "application/octet-stream", contents: [UInt8]) {
        let safeName = String(filename.map { c -> Character in c == "\"" || c == "\r" || c == "\n" ? "_" : c })
        bytes.append(contentsOf: "--\(boundary)\r\n".utf8)
        bytes.append(contentsOf: "Content-Disposition: form-data; name=\"\(field)\"; filename=\"\(safeName)\"\r\n".utf8)
        bytes.append(contentsOf: "Content-Type: \(contentType)\r\n\r\n".utf8)
        bytes.append(contentsOf: contents)
        bytes.append(contentsOf: "\r\n".utf8)
    }

    /// The body with the closing delimiter.
    func finished() -> [UInt8] { bytes + Array("--\(boundary)--\r\n".utf8) }
}
