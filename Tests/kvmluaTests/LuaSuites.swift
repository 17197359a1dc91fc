// Runs the Lua-level tests (Tests/lua/*_test.lua) with the built kvmlua, once per simulator
// generation. Each file prints "ok" and exits 0 when every case passed; failures are listed
// on stderr with a traceback.

import Foundation
import Testing

/// Tests/lua, found from this source file's location.
let luaTestDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()  // kvmluaTests
    url.deleteLastPathComponent()  // Tests
    return url.appendingPathComponent("lua").path
}()

let luaTestFiles: [String] = {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: luaTestDirectory)) ?? []
    return names.filter { $0.hasSuffix("_test.lua") }.sorted()
}()

@Suite("Lua-level tests against the simulator", .tags(.kvmluaAddition), .timeLimit(.minutes(3)))
struct LuaSuites {
    @Test("the Lua test files exist")
    func filesExist() {
        #expect(luaTestFiles.contains("device_test.lua"))
        #expect(luaTestFiles.contains("errors_test.lua"))
    }

    @Test("Tests/lua/*_test.lua", arguments: luaTestFiles, ["current", "legacy"])
    func run(file: String, generation: String) async throws {
        let box = try Sandbox()
        let runner = Runner(binary: .underTest, box: box)
        let result = try await runner.run([luaTestDirectory + "/" + file, generation], timeout: 120)
        #expect(result.status == .exited(0), "\(file) \(generation):\n\(result.stderr)")
        #expect(result.stdout.hasSuffix("ok\n"), "\(file) \(generation): \(result.stdout)")
    }
}
