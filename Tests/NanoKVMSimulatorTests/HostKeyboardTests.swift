import NanoKVM
import NanoKVMSimulator
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
}
