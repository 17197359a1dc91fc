// The OCR worker pool: libtesseract (through CTesseract, loaded on first use) on worker threads
// off the Lua thread. Each worker owns one TessBaseAPI per language, created on its first job
// and reused (Init costs ~125 ms), so only the first read of a process pays for it. Jobs are
// small, already preprocessed images (dark text on light, upscaled) with a page segmentation
// mode; the pool runs as many at once as it has workers (two at most: this is a 2-core box,
// and Tesseract's own OpenMP threads are limited to one by the shim).

internal import CTesseract
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How Tesseract segments the image of one job.
public enum OCRSegmentation: Sendable {
    case sparse, block, line, word

    var pageSegMode: TessPageSegMode {
        switch self {
        case .sparse: PSM_SPARSE_TEXT
        case .block: PSM_SINGLE_BLOCK
        case .line: PSM_SINGLE_LINE
        case .word: PSM_SINGLE_WORD
        }
    }
}

/// One word Tesseract read, in the pixels of the job's image.
struct RecognizedWord: Sendable {
    var text: String
    var confidence: Double
    var left: Int, top: Int, right: Int, bottom: Int
    /// Index of the text line (within the job) the word belongs to.
    var line: Int
}

/// The pool of recognizers.
public final class OCREngine: Sendable {
    /// The process-wide pool (workers are started on first use).
    public static let shared = OCREngine(workers: min(2, max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))))

    private let workers: [Worker]
    private let next = Atomic<Int>(0)

    init(workers count: Int) {
        workers = (0..<max(count, 1)).map { Worker(index: $0) }
    }

    public var workerCount: Int { workers.count }

    /// Recognises `image` (dark text on light) on a worker thread.
    func recognize(_ image: GrayImage, segmentation: OCRSegmentation, language: String) async throws(NanoKVMError) -> [RecognizedWord] {
        let worker = pickWorker()
        let result: Result<[RecognizedWord], NanoKVMError> = await withCheckedContinuation { continuation in
            worker.queue.async {
                continuation.resume(returning: worker.run(image, segmentation: segmentation, language: language))
                worker.pending.subtract(1, ordering: .relaxed)
            }
        }
        return try result.get()
    }

    /// The worker with the fewest queued jobs (round robin among equals).
    private func pickWorker() -> Worker {
        let start = next.add(1, ordering: .relaxed).newValue
        var best = workers[start % workers.count]
        for offset in 1..<max(workers.count, 1) {
            let candidate = workers[(start + offset) % workers.count]
            if candidate.pending.load(ordering: .relaxed) < best.pending.load(ordering: .relaxed) { best = candidate }
        }
        best.pending.add(1, ordering: .relaxed)
        return best
    }

    /// Where the language data is: $TESSDATA_PREFIX, else Debian's folder for Tesseract 5.
    static func dataPath() -> String {
        if let prefix = getenv("TESSDATA_PREFIX") { return String(cString: prefix) }
        return "/usr/share/tesseract-ocr/5/tessdata"
    }

    /// Raises `usage` (naming the Debian package) unless `language` ("eng", "deu+eng") has its
    /// trained data installed; `unsupported` when libtesseract cannot be loaded.
    public static func checkLanguage(_ language: String) throws(NanoKVMError) {
        guard !language.isEmpty, language.utf8.allSatisfy({ $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) || (0x41...0x5A).contains($0) }) else {
            throw NanoKVMError(.usage, "invalid OCR language '\(language)' (Tesseract codes such as \"eng\" or \"deu+eng\")")
        }
        if let error = kvm_tess_load_error() { throw NanoKVMError(.unsupported, String(cString: error)) }
        let folder = dataPath()
        for code in language.split(separator: "+") {
            let file = "\(folder)/\(code).traineddata"
            guard access(file, R_OK) == 0 else {
                let package = "tesseract-ocr-" + String(code.lowercased().map { $0 == "_" ? "-" : $0 })
                throw NanoKVMError(.usage, "OCR language '\(code)' is not installed (no \(file)); install the Debian package \(package)")
            }
        }
    }

    /// Tesseract's version string, loading the library (nil when it cannot be loaded).
    public static var version: String? {
        guard let text = kvm_TessVersion() else { return nil }
        return String(cString: text)
    }
}

/// One worker: a serial queue (one thread at a time) and its recognizers. The TessBaseAPI
/// handles are touched only by jobs of `queue`, which run one after another.
private final class Worker: @unchecked Sendable {  // safe: `apis` is used only on `queue`
    let queue: DispatchQueue
    let pending = Atomic<Int>(0)
    private var apis: [String: OpaquePointer] = [:]

    init(index: Int) {
        queue = DispatchQueue(label: "kvmlua.ocr.\(index)", qos: .userInitiated)
    }

    deinit {
        for api in apis.values {
            kvm_TessBaseAPIEnd(api)
            kvm_TessBaseAPIDelete(api)
        }
    }

    private func api(for language: String) -> Result<OpaquePointer, NanoKVMError> {
        if let api = apis[language] { return .success(api) }
        if let error = kvm_tess_load_error() { return .failure(NanoKVMError(.unsupported, String(cString: error))) }
        guard let api = kvm_TessBaseAPICreate() else { return .failure(NanoKVMError(.unsupported, "TessBaseAPICreate failed")) }
        guard kvm_TessBaseAPIInit3(api, OCREngine.dataPath(), language) == 0 else {
            kvm_TessBaseAPIDelete(api)
            return .failure(NanoKVMError(.usage, "Tesseract cannot load language '\(language)' from \(OCREngine.dataPath())"))
        }
        // We invert light-on-dark text ourselves (Tesseract's own inversion pass is slow and worse).
        _ = kvm_TessBaseAPISetVariable(api, "tessedit_do_invert", "0")
        // Screens have no DPI; a fixed value stops the "Invalid resolution" guess per image.
        _ = kvm_TessBaseAPISetVariable(api, "user_defined_dpi", "150")
        _ = kvm_TessBaseAPISetVariable(api, "debug_file", "/dev/null")
        apis[language] = api
        return .success(api)
    }

    func run(_ image: GrayImage, segmentation: OCRSegmentation, language: String) -> Result<[RecognizedWord], NanoKVMError> {
        guard image.width > 0, image.height > 0 else { return .success([]) }
        let api: OpaquePointer
        switch self.api(for: language) {
        case .success(let value): api = value
        case .failure(let error): return .failure(error)
        }
        kvm_TessBaseAPISetPageSegMode(api, segmentation.pageSegMode)
        var words: [RecognizedWord] = []
        image.pixels.withUnsafeBufferPointer { buffer in
            kvm_TessBaseAPISetImage(api, buffer.baseAddress, Int32(image.width), Int32(image.height), 1, Int32(image.width))
            kvm_TessBaseAPISetSourceResolution(api, 150)
            guard kvm_TessBaseAPIRecognize(api, nil) == 0, let iterator = kvm_TessBaseAPIGetIterator(api) else { return }
            defer { kvm_TessResultIteratorDelete(iterator) }
            let page = kvm_TessResultIteratorGetPageIterator(iterator)
            var line = -1
            repeat {
                if let page, kvm_TessPageIteratorIsAtBeginningOf(page, RIL_TEXTLINE) != 0 { line += 1 }
                guard let text = kvm_TessResultIteratorGetUTF8Text(iterator, RIL_WORD) else { continue }
                let word = String(cString: text)
                kvm_TessDeleteText(text)
                var left: Int32 = 0, top: Int32 = 0, right: Int32 = 0, bottom: Int32 = 0
                guard let page, kvm_TessPageIteratorBoundingBox(page, RIL_WORD, &left, &top, &right, &bottom) != 0 else { continue }
                let trimmed = word.trimmingWhitespace().withScreenQuotes()
                guard !trimmed.isEmpty else { continue }
                words.append(
                    RecognizedWord(
                        text: trimmed, confidence: Double(kvm_TessResultIteratorConfidence(iterator, RIL_WORD)),
                        left: Int(left), top: Int(top), right: Int(right), bottom: Int(bottom), line: max(line, 0)))
            } while kvm_TessResultIteratorNext(iterator, RIL_WORD) != 0
        }
        kvm_TessBaseAPIClear(api)
        return .success(words)
    }
}

extension String {
    /// Tesseract's English model answers typographic quotes; screens that draw text (consoles,
    /// firmware, boot loaders) have the ASCII ones, and scripts wait for those: ’ and ‘ are
    /// the apostrophe and the backquote of a console font (which slants it), “ ” the quote.
    func withScreenQuotes() -> String {
        guard unicodeScalars.contains(where: { (0x2018...0x201D).contains($0.value) }) else { return self }
        var out = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            switch scalar.value {
            case 0x2018: out.append("`")
            case 0x2019: out.append("'")
            case 0x201C, 0x201D: out.append("\"")
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
