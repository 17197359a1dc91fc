@testable import KVMLua
import Testing

@Suite(.timeLimit(.minutes(1))) struct TerminalKeysTests {
    func decode(_ bytes: [UInt8]) -> [TerminalKeyEvent] {
        var decoder = TerminalKeyDecoder()
        return decoder.feed(bytes) + decoder.flushPendingEscape()
    }

    @Test func textAndControlCharacters() {
        #expect(decode(Array("aé😀".utf8)) == [.text("a"), .text("é"), .text("😀")])
        #expect(decode([0x0D, 0x09, 0x7F, 0x03, 0x1A]) == [
            .chord("Enter"), .chord("Tab"), .chord("Backspace"), .chord("ctrl+KeyC"), .chord("ctrl+KeyZ"),
        ])
        #expect(decode([0x1D]) == [.leave])
    }

    @Test func escapeSequences() {
        #expect(decode(Array("\u{1B}[A\u{1B}[D\u{1B}OP\u{1B}[15~\u{1B}[24~\u{1B}[3~\u{1B}[5~\u{1B}[Z".utf8)) == [
            .chord("ArrowUp"), .chord("ArrowLeft"), .chord("F1"), .chord("F5"), .chord("F12"), .chord("Delete"),
            .chord("PageUp"), .chord("shift+Tab"),
        ])
        #expect(decode(Array("\u{1B}[1;5C\u{1B}[1;2A\u{1B}[3;3~".utf8)) == [
            .chord("ctrl+ArrowRight"), .chord("shift+ArrowUp"), .chord("alt+Delete"),
        ])
    }

    @Test func altAndEscape() {
        #expect(decode(Array("\u{1B}x\u{1B}X\u{1B}\r".utf8)) == [.chord("alt+KeyX"), .chord("alt+shift+KeyX"), .chord("alt+Enter")])
        #expect(decode([0x1B]) == [.chord("Escape")])
        var decoder = TerminalKeyDecoder()
        #expect(decoder.feed([0x1B]).isEmpty)
        #expect(decoder.hasPendingEscape)
        #expect(decoder.feed(Array("[B".utf8)) == [.chord("ArrowDown")])
    }

    @Test func splitAcrossReads() {
        var decoder = TerminalKeyDecoder()
        #expect(decoder.feed([0x1B, UInt8(ascii: "[")]).isEmpty)
        #expect(decoder.feed([UInt8(ascii: "1"), UInt8(ascii: "5")]).isEmpty)
        #expect(decoder.feed([UInt8(ascii: "~"), 0xC3]) == [.chord("F5")])
        #expect(decoder.feed([0xA9]) == [.text("é")])
    }

    @Test func garbageIsIgnored() {
        #expect(decode([0xFF, 0xC0, UInt8(ascii: "a")]) == [.text("a")])
        #expect(decode(Array("\u{1B}[99x".utf8)).isEmpty)
    }
}
