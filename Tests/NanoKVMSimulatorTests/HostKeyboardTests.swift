import NanoKVM
@testable import NanoKVMSimulator
import Testing

/// The simulated host's console composes dead keys like its OS layout, and its transcript
/// keeps each typed character once (a tab is one `\t`, not its expansion).
@Suite(.timeLimit(.minutes(1))) struct HostKeyboardTests {
    @Test func deadKeysComposeAndTabsStayTabs() async throws {
        var configuration = SimulatorConfiguration.fast()
        configuration.hostLayout = .de
        try await withSimulator(configuration) { sim in
            let token = try await sim.login()
            let before = sim.transcript
            // The device's German paste table types `^` as the (dead) circumflex key: the host
            // waits, then composes with `e`; `^` then Space is the accent itself.
            _ = try await sim.post("/api/hid/paste", #"{"content":"^e^ a\tb","langue":"de"}"#, token: token)
            try await eventually("typed") { sim.transcript.count >= before.count + 5 }
            #expect(sim.transcript == before + "ê^a\tb")
            // On screen the tab is spaces up to the next multiple of 8.
            #expect(sim.consoleText.hasSuffix("login: ê^a  b"))
        }
    }

    /// Feeds keyboard reports to the host as the gadget would (modifier byte, keys).
    private func send(_ sim: NanoKVMSimulator, _ reports: [(UInt8, [UInt8])]) {
        for (modifiers, keys) in reports {
            sim.device.host.receive(.keyboard, [modifiers, 0] + keys + Array(repeating: 0, count: 6 - keys.count), source: .webSocket)
        }
    }

    @Test("neo: CapsLock and # are Mod3 while held (level 3, with Shift level 4) and lock nothing; both Shifts lock Caps Lock")
    func neoLevelThreeKeysAreModifiers() async throws {
        #expect(XKBEngine.loadError == nil, "libxkbcommon must be installed for these tests (scripts/setup)")
        var configuration = SimulatorConfiguration.fast()
        configuration.hostLayout = try KeyboardLayout.resolve("de(neo)")
        try await withSimulator(configuration) { sim in
            let before = sim.transcript
            let capsLock: UInt8 = 0x39, hash: UInt8 = 0x31, keyE: UInt8 = 0x08  // neo's l
            let shift = KeyModifier.leftShift
            send(sim, [
                (0, [keyE]), (0, []),
                (0, [capsLock]), (0, [capsLock, keyE]), (0, [capsLock]), (0, []),  // [
                (0, [hash]), (0, [hash, keyE]), (0, []),  // [
                (shift, [capsLock]), (shift, [capsLock, keyE]), (0, []),  // λ
                (0, [keyE]), (0, []),  // l again: Mod3 was not latched
            ])
            #expect(sim.transcript == before + "l[[λl")
            #expect(sim.input.capsLock == false, "neo's CapsLock key is Mod3, it locks nothing")
            // shift(both_capslock): Left + Right Shift is Caps Lock, and again unlocks it.
            send(sim, [(KeyModifier.leftShift | KeyModifier.rightShift, []), (0, []), (0, [keyE]), (0, [])])
            #expect(sim.input.capsLock == true)
            send(sim, [(KeyModifier.leftShift | KeyModifier.rightShift, []), (0, []), (0, [keyE]), (0, [])])
            #expect(sim.input.capsLock == false)
            #expect(sim.transcript == before + "l[[λlLl")
        }
    }

    @Test("us through libxkbcommon: CapsLock still locks (the keymap decides, as on a desktop)")
    func capsLockLocksOnUS() async throws {
        var configuration = SimulatorConfiguration.fast()
        configuration.hostLayout = try KeyboardLayout.resolve("us")
        try await withSimulator(configuration) { sim in
            let before = sim.transcript
            send(sim, [(0, [0x39]), (0, []), (0, [0x04]), (0, [])])
            #expect(sim.input.capsLock == true)
            send(sim, [(0, [0x39]), (0, []), (0, [0x04]), (0, [])])
            #expect(sim.input.capsLock == false)
            #expect(sim.transcript == before + "Aa")
        }
    }
}
