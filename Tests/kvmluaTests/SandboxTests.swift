// --sandbox: scripts shared by others cannot run programs, load C code or write outside the
// working directory; kvm stays available.

import Foundation
import Testing

@Suite("--sandbox", .tags(.kvmluaAddition), .timeLimit(.minutes(1)))
struct SandboxTests {
    @Test("what a sandboxed script cannot do, and what it still can")
    func restrictions() async throws {
        let box = try Sandbox()
        let outside = box.home + "/outside.txt"
        try box.write(
            "check.lua",
            """
            local function kind(f, ...)
              local ok, e = pcall(f, ...)
              if ok then return "allowed" end
              return getmetatable(e) == kvm.Error and e.kind or "error"
            end
            print("execute", kind(os.execute, "true"), os.execute())
            print("popen", kind(io.popen, "ls"))
            print("loadlib", kind(package.loadlib, "libc.so.6", "puts"))
            print("cjson", (pcall(require, "cjson")))
            print("write outside", io.open("\(outside)", "w"))
            print("write .. escape", io.open("../escape.txt", "w"))
            local inside = assert(io.open("inside.txt", "w")) inside:write("ok") inside:close()
            print("write inside", io.open("inside.txt"):read("a"))
            print("read outside", io.open("/etc/hostname") ~= nil)
            print("remove outside", os.remove("\(outside)"))
            print("binary chunk", load(string.dump(function() end)))
            print("debug", debug.getregistry, type(debug.traceback))
            print("kvm", type(kvm.sleep), kvm.json.encode({1}))
            """)
        try "keep".write(toFile: outside, atomically: true, encoding: .utf8)
        let r = try await Runner(binary: .underTest, box: box).run(["--sandbox", "check.lua"])
        #expect(r.status == .exited(0), "\(r)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        func line(_ prefix: String) -> String { lines.first { $0.hasPrefix(prefix) } ?? "(missing)" }
        #expect(line("execute") == "execute\tpermission\tfalse")
        #expect(line("popen") == "popen\tpermission")
        #expect(line("loadlib") == "loadlib\tpermission")
        #expect(line("cjson") == "cjson\tfalse")
        #expect(line("write outside").contains("writing outside the working directory is not allowed"))
        #expect(line("write .. escape").contains("writing outside the working directory is not allowed"))
        #expect(line("write inside") == "write inside\tok")
        #expect(line("read outside") == "read outside\ttrue")
        #expect(line("remove outside").contains("not allowed"))
        #expect(line("binary chunk").hasPrefix("binary chunk\tnil\tattempt to load a binary chunk"))
        #expect(line("debug") == "debug\tnil\tfunction")
        #expect(line("kvm") == "kvm\tfunction\t[1]")
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "keep")
    }

    @Test("kvm functions that save files obey it too")
    func screenshotOutside() async throws {
        let box = try Sandbox()
        let r = try await Runner(binary: .underTest, box: box).run(
            ["--sandbox", "--sim", "-e", "dev:screenshot('\(box.home)/s.jpg')"], timeout: 30)
        #expect(r.status == .exited(1))
        #expect(r.stderr.contains("writing outside the working directory is not allowed (--sandbox)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: box.home + "/s.jpg"))
        let inside = try await Runner(binary: .underTest, box: box).run(["--sandbox", "--sim", "-e", "print(dev:screenshot('s.jpg').width)"], timeout: 30)
        #expect(inside.stdout == "1280\n", "\(inside)")
    }
}
