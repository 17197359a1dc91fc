// Acceptance of issue 13: the character error rate of the full-screen OCR (`dev:ocr()`, i.e.
// `ScreenTextReader` in screen mode) on the simulated machine's console, BIOS setup and GRUB
// screens, at 1024×768 and 1920×1080, in both firmware generations, against the simulator's
// own text of the screen (its inspection view, `dev:sim_state().screen.lines`).
//
// CER = Levenshtein distance over Unicode characters / characters of the ground truth, both
// sides normalised by `normalizedText` (VisionOCRTests.swift): trailing spaces dropped, runs of
// spaces collapsed to one, box-drawing characters (U+2500–U+257F) removed, blank lines removed.
// Box drawing is not text a script waits for, and the reader erases box sides on purpose.

import Foundation
@testable import NanoKVM
@testable import NanoKVMSimulator
import Testing

@Suite("Vision: OCR accuracy on the console, BIOS and GRUB screens", .serialized, .timeLimit(.minutes(2)))
struct VisionOCRAccuracyTests {
    /// The screens measured: the minimal console with a session typed in, the firmware setup
    /// (cyan title bar, highlighted tab, two columns, a divider), GRUB (a box, a highlighted entry).
    static let scenes: [SimulatorScene] = [.console, .bios, .grub]
    static let sizes: [(Int, Int)] = [(1024, 768), (1920, 1080)]

    @Test("CER ≤ 1% against the simulator's screen text, both generations", arguments: scenes, sizes)
    func screenCER(scene: SimulatorScene, size: (Int, Int)) async throws {
        for generation in SimulatorGeneration.allCases {
            try await withDevice(generation, configure: { configuration in
                configuration.width = size.0
                configuration.height = size.1
                configuration.scene = scene
                // The setup screen's clock fixed; machine screens stay put (GRUB's countdown
                // would boot after a quarter of a second at time scale 0).
                configuration.clock = Date(timeIntervalSince1970: 1_764_841_740)
                if scene != .console { configuration.timeScale = 100 }
            }) { simulator, client in
                if scene == .console {
                    try await client.hid.paste(consoleScript.joined(separator: "\n"))
                    for _ in 0..<100 where !simulator.consoleText.contains("lazy dogs!") { try await Task.sleep(for: .milliseconds(20)) }
                }
                _ = try await client.frames.waitStill(seconds: 0.3, timeout: .seconds(5))
                let frame = try await client.frames.screenshot()
                let truth = simulator.screenText().text
                let start = Date()
                let result = try await ScreenTextReader().read(frame)
                let seconds = Date().timeIntervalSince(start)
                let cer = characterErrorRate(read: result.text, truth: truth)
                print("\(scene.rawValue) \(size.0)x\(size.1) \(generation.rawValue): CER \(String(format: "%.4f", cer)) in \(String(format: "%.2f", seconds)) s")
                #expect(cer <= 0.01, "\(scene.rawValue) \(size.0)x\(size.1) \(generation.rawValue) read:\n\(normalizedText(result.text))\n---- truth:\n\(normalizedText(truth))")
            }
        }
    }
}
