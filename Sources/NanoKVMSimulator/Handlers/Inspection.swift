// Test-only endpoints (404 unless `inspection` is on) and the mouse jiggler.
//   GET  /__sim/state             the SimulatorState JSON (with `scene`, `machine`, `screen`)
//   GET  /__sim/screen            the scene, the machine's state and the visible text line by
//                                 line with each line's pixel box (the OCR ground truth)
//   GET  /__sim/reports[?since=N] the HID report log from index N
//   POST /__sim/fault             {"fault":"http500"|"malformedJSON"|"delay"|"dropConnection"|
//                                  "dropWebSockets"|"dropWebSocketsAfter"|"truncateMJPEG"|"expireTokens",
//                                  "path":…, "seconds":…, "reports":…}
//   POST /__sim/power             {"on":bool}
//   POST /__sim/reset-reports

import Foundation
import NanoKVM
import Synchronization

extension Device {
    func inspect(_ request: SimRequest) async -> SimResponse {
        switch (request.method, request.path) {
        case ("GET", "/__sim/state"):
            return Self.json(.ok, snapshot().json)
        case ("GET", "/__sim/screen"):
            let machine = host.machineState
            return Self.json(.ok, [
                "scene": .string(machine?.scene ?? (host.poweredOn ? "console" : "off")),
                "machine": machine.map(\.json) ?? .null, "screen": host.screenText.json,
            ])
        case ("GET", "/__sim/reports"):
            let since = request.queryItems.first { $0.0 == "since" }.flatMap { Int($0.1) } ?? 0
            let reports = host.reports
            let slice = since < reports.count ? Array(reports[max(since, 0)...]) : []
            let items: [JSONValue] = slice.map { report in
                [
                    "kind": .string(report.kind.rawValue), "source": .string(report.source.rawValue),
                    "bytes": .array(report.bytes.map { .integer(Int64($0)) }),
                    "monotonicNs": .integer(Int64(clamping: report.monotonicNanoseconds)), "t": .double(report.seconds),
                    "delivered": .bool(report.delivered),
                ]
            }
            return Self.json(.ok, ["count": .integer(Int64(reports.count)), "reports": .array(items)])
        case ("GET", "/__sim/requests"):
            let log = state.withLock { $0.requestLog }
            return Self.json(.ok, .array(log.map { r in
                [
                    "method": .string(r.method), "path": .string(r.path), "hadCookie": .bool(r.hadCookie),
                    "origin": r.origin.map { .string($0) } ?? .null, "status": .integer(Int64(r.status)),
                ]
            }))
        case ("POST", "/__sim/reset-reports"):
            host.clearReports()
            return Self.json(.ok, ["ok": true])
        case ("POST", "/__sim/power"):
            guard let body = try? JSONValue.parse(bytes: request.body), let on = body["on"]?.boolValue else {
                return Self.json(.badRequest, ["error": "expected {\"on\":bool}"])
            }
            host.setPower(on)
            return Self.json(.ok, ["ok": true])
        case ("POST", "/__sim/fault"):
            guard let body = try? JSONValue.parse(bytes: request.body), let name = body["fault"]?.stringValue else {
                return Self.json(.badRequest, ["error": "expected {\"fault\":name}"])
            }
            let path = body["path"]?.stringValue
            let fault: SimulatorFault
            switch name {
            case "http500": fault = .http500(path: path)
            case "malformedJSON": fault = .malformedJSON(path: path)
            case "delay": fault = .delay(seconds: body["seconds"]?.doubleValue ?? 1, path: path)
            case "dropConnection": fault = .dropConnection(path: path)
            case "dropWebSockets": fault = .dropWebSockets
            case "dropWebSocketsAfter": fault = .dropWebSocketsAfter(reports: body["reports"]?.intValue ?? 1)
            case "truncateMJPEG": fault = .truncateNextMJPEGPart
            case "truncateMJPEGAndContinue": fault = .truncateMJPEGPartAndContinue
            case "garbleMJPEG": fault = .garbleNextMJPEGPart
            case "notAnEnvelope": fault = .notAnEnvelope(path: path)
            case "expireTokens": fault = .expireTokens
            default: return Self.json(.badRequest, ["error": .string("unknown fault \(name)")])
            }
            apply(fault)
            return Self.json(.ok, ["ok": true])
        default:
            return Self.notFound
        }
    }
}

/// The jiggler's background task, one per device.
private let jigglerTasks = Mutex<[ObjectIdentifier: Task<Void, Never>]>([:])

extension Device {
    /// Interval without HID input after which the jiggler moves the pointer (15 s on the
    /// device, scaled by `timeScale` with a floor so tests stay responsive).
    var jigglerInterval: Duration { .milliseconds(max(15_000 * configuration.timeScale, 200)) }

    func startJiggler() {
        jigglerTasks.withLock { tasks in
            guard tasks[ObjectIdentifier(self)] == nil else { return }
            tasks[ObjectIdentifier(self)] = Task(executorPreference: SimulatorExecutor.shared) { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    guard let self else { return }
                    let (enabled, mode) = self.state.withLock { ($0.jigglerEnabled, $0.jigglerMode) }
                    if !enabled { break }
                    let idle = self.host.state.withLock { ContinuousClock.now - $0.lastHIDInput }
                    guard idle > self.jigglerInterval else { continue }
                    if mode == "absolute" {
                        self.host.receive(.absoluteMouse, [0, 0x00, 0x3F, 0x00, 0x3F, 0], source: .jiggler)
                        try? await Task.sleep(for: .milliseconds(100))
                        self.host.receive(.absoluteMouse, [0, 0xFF, 0x3F, 0xFF, 0x3F, 0], source: .jiggler)
                    } else {
                        self.host.receive(.relativeMouse, [0, 0x0A, 0x0A, 0], source: .jiggler)
                        try? await Task.sleep(for: .milliseconds(100))
                        self.host.receive(.relativeMouse, [0, 0xF6, 0xF6, 0], source: .jiggler)
                    }
                    self.host.state.withLock { $0.lastHIDInput = .now }
                }
                if let self { _ = jigglerTasks.withLock { $0.removeValue(forKey: ObjectIdentifier(self)) } }
            }
        }
    }

    func stopJiggler() {
        jigglerTasks.withLock { $0.removeValue(forKey: ObjectIdentifier(self)) }?.cancel()
    }
}

extension Device {
    /// Tells the machine which image the USB gadget presents now (its boot devices follow).
    func presentMediaToHost() {
        let (file, cdrom) = state.withLock { ($0.mountedFile, $0.cdromFlag == 1) }
        host.setMedia(file.isEmpty ? nil : file, cdrom: cdrom)
    }
}
