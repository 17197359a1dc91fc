// swift-tools-version:6.2
import PackageDescription

// kvmlua: Lua 5.4 with a `kvm` module for Sipeed NanoKVM devices, a lua-compatible
// REPL/script runner, and a simulated NanoKVM. See DEVELOPERS.md for the layout.
let package = Package(
    name: "kvmlua",
    products: [
        .executable(name: "kvmlua", targets: ["kvmlua"]),
        .executable(name: "nanokvm-sim", targets: ["nanokvm-sim"]),
        .library(name: "NanoKVM", targets: ["NanoKVM"]),
        .library(name: "NanoKVMSimulator", targets: ["NanoKVMSimulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // System libraries (Debian packages). Thin static-inline shims live in each shim.h,
        // because Lua's API macros (lua_pop, lua_pcall, ...) are invisible to Swift.
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .systemLibrary(name: "CReadline", providers: [.apt(["libreadline-dev"])]),
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),  // loaded on first use: shim.h
        .systemLibrary(name: "CXKBCommon", providers: [.apt(["libxkbcommon-dev", "xkb-data"])]),  // loaded on first use: shim.h
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Tesseract OCR, loaded on first use (shim.h); no pkgConfig, which would link it.
        .systemLibrary(name: "CTesseract", providers: [.apt(["libtesseract-dev", "tesseract-ocr-eng"])]),
        // The few C functions that must be real C: the lua_CFunction trampoline (a Lua
        // error or yield must never longjmp across Swift frames) and the SIGINT handler.
        .target(name: "CLuaRuntime", dependencies: ["CLua"]),

        // NanoKVM client library: pure Swift, no Lua.
        .target(
            name: "NanoKVM",
            dependencies: [
                "COpenSSL", "CTurboJPEG", "CZlib", "CXKBCommon", "CTesseract",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // Our own WebSocket client (WSClient always sends an Origin without the port,
                // which the multi-user firmware rejects on non-default ports).
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        // A faithful simulated NanoKVM (HTTP + WebSocket + MJPEG) for tests and demos.
        .target(
            name: "NanoKVMSimulator",
            dependencies: [
                "NanoKVM", "COpenSSL", "CTurboJPEG", "CZlib", "CXKBCommon",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(name: "nanokvm-sim", dependencies: ["NanoKVMSimulator"]),
        // MJPEG parser throughput next to memchr (release build; see the file's header).
        .executableTarget(name: "MJPEGBenchmark", dependencies: ["NanoKVM"], path: "Benchmarks/MJPEGBenchmark"),
        // Screen soak: streams from a simulator for minutes and reports resident memory growth.
        .executableTarget(name: "ScreenSoak", dependencies: ["NanoKVM"], path: "Benchmarks/ScreenSoak"),
        // Typing over the WebSocket next to the device's paste endpoint, with timing errors (release build).
        // Macro playback timing: a 1,000-step macro against the simulator's receive timestamps.
        .executableTarget(name: "MacroBenchmark", dependencies: ["NanoKVM", "NanoKVMSimulator"], path: "Benchmarks/MacroBenchmark"),
        // Capture CPU per simulator scene at 1280x720, 30 fps (release build; see the file's header).
        .executableTarget(name: "CaptureBenchmark", dependencies: ["NanoKVM", "NanoKVMSimulator"], path: "Benchmarks/CaptureBenchmark"),
        .executableTarget(name: "TypingBenchmark", dependencies: ["NanoKVM", "NanoKVMSimulator"], path: "Benchmarks/TypingBenchmark"),
        // XKB layouts: table build time per layout, typing ch(fr) next to us at delay 0.
        .executableTarget(name: "LayoutBenchmark", dependencies: ["NanoKVM", "NanoKVMSimulator"], path: "Benchmarks/LayoutBenchmark"),

        // Swift <-> Lua values, functions, userdata, errors and the coroutine scheduler.
        .target(name: "LuaBridge", dependencies: ["CLua", "CLuaRuntime"]),
        // The `kvm` Lua module.
        .target(name: "KVMLua", dependencies: ["LuaBridge", "CLua", "NanoKVM", "NanoKVMSimulator"]),
        // The lua-compatible command line and REPL.
        .executableTarget(name: "kvmlua", dependencies: ["KVMLua", "LuaBridge", "NanoKVM", "CLua", "CReadline"]),

        .testTarget(name: "LuaBridgeTests", dependencies: ["LuaBridge", "CLua"]),
        .testTarget(name: "KVMLuaTests", dependencies: ["KVMLua", "LuaBridge"]),
        // Runs the built `kvmlua` binary (pipes and a pseudo-terminal) against the lua CLI contract.
        .testTarget(name: "kvmluaTests", dependencies: ["kvmlua", "NanoKVMSimulator"]),
        // NIO and NIOSSL: a scripted loopback device (crafted MJPEG streams, TLS with pinning).
        .testTarget(
            name: "NanoKVMTests",
            dependencies: [
                "NanoKVM", "NanoKVMSimulator",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(name: "NanoKVMSimulatorTests", dependencies: ["NanoKVMSimulator"]),
    ],
    swiftLanguageModes: [.v6]
)
