import NanoKVM
import NanoKVMSimulator
import Testing

/// A simulator on a loopback port, stopped when the body ends (also on failure).
func withSimulator<T>(
    _ generation: SimulatorGeneration, configure: (inout SimulatorConfiguration) -> Void = { _ in },
    _ body: (NanoKVMSimulator) async throws -> T
) async throws -> T {
    var configuration = SimulatorConfiguration.fast(generation)
    configure(&configuration)
    let simulator = NanoKVMSimulator(configuration: configuration)
    try await simulator.start()
    do {
        let result = try await body(simulator)
        await simulator.stop()
        return result
    } catch {
        await simulator.stop()
        throw error
    }
}

/// A simulator and a client logged in to it; both closed when the body ends.
func withDevice<T>(
    _ generation: SimulatorGeneration, configure: (inout SimulatorConfiguration) -> Void = { _ in },
    options: (inout ConnectionOptions) -> Void = { _ in },
    _ body: (NanoKVMSimulator, NanoKVMClient) async throws -> T
) async throws -> T {
    try await withSimulator(generation, configure: configure) { simulator in
        var connection = try ConnectionOptions(url: simulator.baseURL, username: simulator.configuration.username, password: simulator.configuration.password)
        options(&connection)
        let client = try await NanoKVMClient.connect(connection)
        do {
            let result = try await body(simulator, client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }
}

/// Runs `body` and returns the NanoKVMError it throws; records an issue if it succeeds.
@discardableResult
func expectError<T>(
    _ kind: NanoKVMError.Kind, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async -> NanoKVMError? {
    do {
        let value = try await body()
        Issue.record("expected a \(kind) error, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch let error as NanoKVMError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected NanoKVMError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

let bothGenerations: [SimulatorGeneration] = [.legacy, .current]
