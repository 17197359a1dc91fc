// The public face of the simulated NanoKVM: start it on a loopback port (from tests, the
// `nanokvm-sim` executable, or `kvm.sim()` inside kvmlua), look at what the virtual host
// received, and inject faults. `start()` returns once the port is bound; the server runs on
// SwiftNIO's shared event loops, so it can be called from any thread or task.

import Foundation
import NanoKVM
import Synchronization

/// A snapshot of the simulated device and host for tests (also served as `GET /__sim/state`).
public struct SimulatorState: Sendable {
    public var generation: SimulatorGeneration
    public var applicationVersion: String
    public var poweredOn: Bool
    public var powerLED: Bool
    public var hddLED: Bool
    public var powerButtonDown: Bool
    public var resetButtonDown: Bool
    public var consoleText: String
    /// Everything typed since the host last powered on (what scrolled away included).
    public var transcript: String
    public var input: SimulatorInputState
    public var reportCount: Int
    public var mountedImage: String
    public var cdrom: Bool
    public var images: [String]
    public var virtualNetwork: Bool
    public var virtualDisk: Bool
    public var hidMode: String
    public var hostname: String
    public var frameDetect: Bool
    public var fps: Int
    public var quality: Int
    public var resolution: Int
    public var webSocketConnections: Int
    public var mjpegViewers: Int
    /// Capture-loop ticks that delivered a frame to the MJPEG viewers.
    public var mjpegFramesDelivered: Int
    public var jigglerEnabled: Bool
    /// Successful and failed logins since start.
    public var loginCount: Int
    public var failedLoginCount: Int
    /// The Origin header of the last accepted `/api/ws` upgrade (nil when none was sent).
    public var lastWebSocketOrigin: String?
    /// `console` (the minimal console), `off`, or the machine's screen (see `SimulatorMachineState.scene`).
    public var scene: String = "console"
    /// The machine's state; nil for the minimal console.
    public var machine: SimulatorMachineState?
    /// What the screen shows, line by line with pixel boxes.
    public var screen = SimulatorScreenText(columns: 0, rows: 0, cellWidth: 0, cellHeight: 0, font: "", lines: [])

    /// The JSON of `GET /__sim/state` (reports are listed by `GET /__sim/reports`).
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("generation", .string(generation.rawValue)), ("applicationVersion", .string(applicationVersion)),
            ("poweredOn", .bool(poweredOn)), ("leds", ["power": .bool(powerLED), "hdd": .bool(hddLED)]),
            ("buttons", ["power": .bool(powerButtonDown), "reset": .bool(resetButtonDown)]),
            ("console", .string(consoleText)), ("transcript", .string(transcript)),
        ]
        let keyboard: JSONValue = [
            "modifiers": .integer(Int64(input.modifiers)),
            "pressed": .array(input.pressedKeys.map { .integer(Int64($0)) }),
            "numLock": .bool(input.numLock), "capsLock": .bool(input.capsLock), "scrollLock": .bool(input.scrollLock),
        ]
        let absolute: JSONValue = input.absolute.map { ["x": .integer(Int64($0.x)), "y": .integer(Int64($0.y))] } ?? .null
        let mouse: JSONValue = [
            "buttons": .integer(Int64(input.buttons)), "absolute": absolute,
            "relative": ["x": .integer(Int64(input.relativeTotal.x)), "y": .integer(Int64(input.relativeTotal.y))],
            "pointer": ["x": .integer(Int64(input.pointer.x)), "y": .integer(Int64(input.pointer.y))],
            "wheel": .integer(Int64(input.wheelTotal)),
        ]
        members += [
            ("keyboard", keyboard), ("mouse", mouse), ("reportCount", .integer(Int64(reportCount))),
            ("storage", [
                "mounted": .string(mountedImage), "cdrom": .bool(cdrom), "images": .array(images.map { .string($0) }),
            ]),
            ("virtual", ["network": .bool(virtualNetwork), "disk": .bool(virtualDisk)]),
            ("hidMode", .string(hidMode)), ("hostname", .string(hostname)),
            ("stream", [
                "frameDetect": .bool(frameDetect), "fps": .integer(Int64(fps)), "quality": .integer(Int64(quality)),
                "resolution": .integer(Int64(resolution)), "viewers": .integer(Int64(mjpegViewers)),
                "framesDelivered": .integer(Int64(mjpegFramesDelivered)),
            ]),
            ("webSocketConnections", .integer(Int64(webSocketConnections))), ("jiggler", .bool(jigglerEnabled)),
            ("loginCount", .integer(Int64(loginCount))), ("failedLoginCount", .integer(Int64(failedLoginCount))),
            ("lastWebSocketOrigin", lastWebSocketOrigin.map { .string($0) } ?? .null),
            ("scene", .string(scene)), ("machine", machine.map(\.json) ?? .null), ("screen", screen.json),
        ]
        return .object(members)
    }
}

public struct SimulatorError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

public final class NanoKVMSimulator: Sendable {
    public let configuration: SimulatorConfiguration
    let device: Device
    private let server: SimHTTPServer
    private let boundPort = Mutex<Int?>(nil)

    public init(configuration: SimulatorConfiguration = SimulatorConfiguration()) {
        self.configuration = configuration
        self.device = Device(configuration: configuration)
        self.server = SimHTTPServer(handler: device)
        let profile = device.profile
        device.events.sendCaptureEvents.withLock { $0 = profile.atLeast("2.4.2") }
        device.events.sendLEDEvents.withLock { $0 = profile.atLeast("2.5.0") }
    }

    /// Binds the listener; returns when requests can be made.
    public func start() async throws {
        guard boundPort.withLock({ $0 }) == nil else { return }
        do {
            let port = try await withTaskExecutorPreference(SimulatorExecutor.shared) {
                try await server.start(host: configuration.host, port: configuration.port)
            }
            boundPort.withLock { $0 = port }
        } catch {
            throw SimulatorError(description: "cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
    }

    /// For callers outside Swift concurrency (the Lua thread): starts in the background and
    /// calls `completion` with the bound port, on an arbitrary thread. Returns at once.
    public func startInBackground(_ completion: @escaping @Sendable (Result<Int, SimulatorError>) -> Void) {
        Task.detached {
            do {
                try await self.start()
                completion(.success(self.port))
            } catch let error as SimulatorError {
                completion(.failure(error))
            } catch {
                completion(.failure(SimulatorError(description: "\(error)")))
            }
        }
    }

    /// Stops in the background (see `startInBackground`); `completion` runs when done.
    public func stopInBackground(_ completion: @escaping @Sendable () -> Void = {}) {
        Task.detached {
            await self.stop()
            completion()
        }
    }

    /// Closes the listener and every open connection and stops the capture loop.
    public func stop() async {
        device.capture.stop()
        device.stopJiggler()
        await server.stop()
    }

    /// The bound TCP port (0 before `start()`).
    public var port: Int { boundPort.withLock { $0 } ?? 0 }

    /// `http://host:port`.
    public var baseURL: String {
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        return "http://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(port)"
    }

    // MARK: Inspection

    public func state() async -> SimulatorState { device.snapshot() }

    /// The visible console text of the simulated host.
    public var consoleText: String { device.host.consoleText }
    /// The visible text of the screen line by line, each line with its pixel box (the ground
    /// truth for OCR): the machine's current screen, or the minimal console.
    public func screenText() -> SimulatorScreenText { device.host.screenText }
    /// The machine's scene, selection, boot order, cursor and buttons (nil for `scene: .console`).
    public func machineState() -> SimulatorMachineState? { device.host.machineState }
    /// Everything typed since power-on.
    public var transcript: String { device.host.transcript }
    /// Every HID report received, oldest first.
    public var reports: [SimulatorReport] { device.host.reports }
    public var input: SimulatorInputState { device.host.input }
    public func clearReports() { device.host.clearReports() }
    /// Every request the device answered (inspection endpoints excluded), oldest first.
    public var requestLog: [SimulatorRequestRecord] { device.state.withLock { $0.requestLog } }
    /// Forgets the requests logged so far.
    public func clearRequestLog() { device.state.withLock { $0.requestLog.removeAll() } }

    // MARK: Control

    public func inject(_ fault: SimulatorFault) { device.apply(fault) }

    /// A simulated service restart: every token is rejected from now on.
    public func expireTokens() { device.rotateSecret(); device.events.sessionsRevoked() }

    /// main: revoke every session of `username` (open WebSockets close with 4401).
    public func revokeSessions(of username: String) {
        device.revokeSessions(of: username)
        device.events.sessionsRevoked()
    }

    /// Powers the simulated host on or off directly (no button press).
    public func setHostPower(_ on: Bool) { device.host.setPower(on) }

    /// Hands the host one 8-byte keyboard report as if the WebSocket had written it (benchmarks).
    public func injectKeyboardReport(_ bytes: [UInt8]) { device.host.receive(.keyboard, bytes, source: .webSocket) }

    /// Changes the host's keyboard layout.
    public func setHostLayout(_ layout: KeyboardLayout) { device.host.setLayout(layout) }

    /// A valid session token for `username` (tests that skip the login).
    public func makeToken(for username: String? = nil) -> String? {
        device.issueToken(for: username ?? configuration.username)
    }

    /// The simulator's own password obfuscation (same output format as `openssl enc`).
    public static func obfuscate(_ password: String, urlEncoded: Bool = true) -> String {
        DeviceCrypto.encrypt(password, urlEncoded: urlEncoded)
    }

    /// Decodes a password field as the device does; nil where the device would fail or panic.
    public static func deobfuscate(_ field: String) -> String? {
        guard case let .plaintext(bytes) = DeviceCrypto.decodeDecrypt(field), !bytes.isEmpty else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Device {
    func snapshot() -> SimulatorState {
        let settings = capture.settings.withLock { $0 }
        let input = host.input
        let reportCount = host.state.withLock { $0.reports.count }
        let machine = host.machineState
        let screen = host.screenText
        let scene = machine?.scene ?? (host.poweredOn ? "console" : "off")
        return state.withLock { s in
            SimulatorState(
                generation: configuration.generation, applicationVersion: configuration.effectiveApplicationVersion,
                poweredOn: host.poweredOn, powerLED: host.poweredOn,
                hddLED: configuration.hardware == "Alpha" && host.diskBusy, powerButtonDown: s.powerButtonDown,
                resetButtonDown: s.resetButtonDown, consoleText: host.consoleText, transcript: host.transcript, input: input,
                reportCount: reportCount, mountedImage: s.mountedFile, cdrom: s.cdromFlag == 1, images: s.images.keys.sorted(),
                virtualNetwork: s.networkDevice, virtualDisk: s.diskDevice, hidMode: s.hidMode, hostname: s.hostname,
                frameDetect: settings.frameDetect, fps: settings.fps, quality: settings.quality, resolution: settings.resolution,
                webSocketConnections: events.connectionCount, mjpegViewers: capture.viewerCount,
                mjpegFramesDelivered: capture.framesDelivered.withLock { $0 }, jigglerEnabled: s.jigglerEnabled,
                loginCount: s.loginCount, failedLoginCount: s.failedLoginCount, lastWebSocketOrigin: s.lastWebSocketOrigin,
                scene: scene, machine: machine, screen: screen)
        }
    }

    func apply(_ fault: SimulatorFault) {
        switch fault {
        case .dropWebSockets:
            events.dropWebSockets()
        case let .dropWebSocketsAfter(reports):
            state.withLock { $0.webSocketDropAfterReports = max(reports, 1) }
        case .expireTokens:
            rotateSecret()
            events.sessionsRevoked()
        default:
            state.withLock { $0.faults.append(fault) }
        }
    }
}

extension SimulatorMachineState {
    var json: JSONValue {
        let cursorJSON: JSONValue = cursor.map {
            ["row": .integer(Int64($0.row)), "column": .integer(Int64($0.column)), "visible": .bool($0.visible)]
        } ?? .null
        return [
            "scene": .string(scene), "selection": selection.map { .string($0) } ?? .null, "tab": tab.map { .string($0) } ?? .null,
            "bootOrder": .array(bootOrder.map { .string($0) }), "pendingBootOrder": .array(pendingBootOrder.map { .string($0) }),
            "cursor": cursorJSON, "pointerShown": .bool(pointerShown), "setupWindowOpen": .bool(setupWindowOpen),
            "loggedIn": .bool(loggedIn),
            "buttons": .array(buttons.map { b in
                [
                    "label": .string(b.label), "x": .integer(Int64(b.x)), "y": .integer(Int64(b.y)), "w": .integer(Int64(b.width)),
                    "h": .integer(Int64(b.height)), "selected": .bool(b.selected),
                ]
            }),
        ]
    }
}

extension SimulatorScreenText {
    var json: JSONValue {
        [
            "columns": .integer(Int64(columns)), "rows": .integer(Int64(rows)), "cellWidth": .integer(Int64(cellWidth)),
            "cellHeight": .integer(Int64(cellHeight)), "font": .string(font),
            "lines": .array(lines.map { line in
                [
                    "row": .integer(Int64(line.row)), "text": .string(line.text), "x": .integer(Int64(line.x)),
                    "y": .integer(Int64(line.y)), "w": .integer(Int64(line.width)), "h": .integer(Int64(line.height)),
                ]
            }),
        ]
    }
}
