// §6.3 and §6.5/§9.1: paste, HID reset and mode, keyboard LEDs, shortcuts, leader key, frame
// detection and the MJPEG stream.

import Foundation
import NanoKVM

extension VirtualHost {
    /// The USB gadget was rebuilt: the host sees the keyboard and mice disappear, which
    /// releases every key and button.
    func usbReenumerated() {
        state.withLock { s in
            s.input.pressedKeys = []
            s.input.modifiers = 0
            s.input.buttons = 0
        }
    }
}

extension Device {
    func paste(_ c: RouteContext) async -> SimResponse {
        let fields = [GoField("Content", .string, form: "content", required: true), GoField("Langue", .string, form: "langue")]
        guard case let .success(body) = RequestBinder.bind(c.request, "PasteReq", fields) else {
            return fail(-1, "invalid arguments")
        }
        let content = body.string("Content")
        if profile.pasteRuneLimit {
            if content.unicodeScalars.count > 833 { return fail(-2, "content too long") }
        } else if content.utf8.count > 1024 {
            return fail(-2, profile.atLeast("2.1.1") ? "content too long" : "")
        }
        let table = PasteTables.table(langue: body.string("Langue"), profile: profile)
        let keyUp = [UInt8](repeating: 0, count: 8)
        // Go ranges over runes: a "\r\n" pair is two characters, of which "\r" is skipped.
        for scalar in content.unicodeScalars {
            guard let key = table[Character(scalar)] else { continue }
            if profile.pasteShiftExtraReports, key.modifiers > 0 {
                host.receive(.keyboard, [0, 0, 0xE1, 0, 0, 0, 0, 0], source: .paste)
            }
            host.receive(.keyboard, [key.modifiers, 0, key.usage, 0, 0, 0, 0, 0], source: .paste)
            host.receive(.keyboard, keyUp, source: .paste)
            if profile.pasteShiftExtraReports, key.modifiers > 0 { host.receive(.keyboard, keyUp, source: .paste) }
            await deviceDelay(milliseconds: profile.pasteDelayMilliseconds)
        }
        if profile.atLeast("2.5.0") { host.receive(.keyboard, keyUp, source: .paste) }
        return ok()
    }

    func resetHID(_ c: RouteContext) async -> SimResponse {
        await deviceDelay(milliseconds: 1000)
        host.usbReenumerated()
        return ok()
    }

    func hidMode(_ c: RouteContext) async -> SimResponse {
        ok(["mode": .string(state.withLock { $0.hidMode })])
    }

    func setHIDMode(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetHidModeReq", [GoField("Mode", .string, required: true)]) else {
            return fail(-1, "invalid arguments")
        }
        let mode = body.string("Mode")
        guard mode == "normal" || mode == "hid-only" else { return fail(-2, "invalid arguments") }
        let changed = state.withLock { s -> Bool in
            guard s.hidMode != mode else { return false }
            s.hidMode = mode
            if mode == "hid-only" { s.mountedFile = "" }
            return true
        }
        if changed { scheduleDeviceRestart(after: 500) }
        return ok()
    }

    func keyboardLEDs(_ c: RouteContext) async -> SimResponse {
        let input = host.input
        let updated = events.ledTimestamp.withLock { $0 }
        return ok([
            "numLock": .bool(input.numLock), "capsLock": .bool(input.capsLock), "scrollLock": .bool(input.scrollLock),
            "known": .bool(input.ledsKnown), "updatedAt": .string(input.ledsKnown ? updated.map(GoTime.rfc3339Nano) ?? "" : ""),
        ])
    }

    func shortcuts(_ c: RouteContext) async -> SimResponse {
        let list = state.withLock { $0.shortcuts }
        let items: [JSONValue] = list.map { shortcut in
            ["id": .string(shortcut.id), "keys": .array(shortcut.keys.map { ["code": .string($0.code), "label": .string($0.label)] })]
        }
        return ok(["shortcuts": .array(items)])
    }

    func addShortcut(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "AddShortcutReq", [GoField("Keys", .objectArray, required: true)]),
            let keys = body.array("Keys")
        else { return fail(-1, "invalid arguments") }
        let parsed = keys.map { key -> (code: String, label: String) in
            let object = key.objectValue ?? []
            func member(_ name: String) -> String {
                object.first { $0.key.lowercased() == name }?.value.stringValue ?? ""
            }
            return (member("code"), member("label"))
        }
        state.withLock { $0.shortcuts.append((id: UUID().uuidString.lowercased(), keys: parsed)) }
        return ok()
    }

    func deleteShortcut(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "DeleteShortcutReq", [GoField("ID", .string, required: true)]) else {
            return fail(-1, "invalid arguments")
        }
        let removed = state.withLock { s -> Bool in
            let before = s.shortcuts.count
            s.shortcuts.removeAll { $0.id == body.string("ID") }
            return s.shortcuts.count != before
        }
        return removed ? ok() : fail(-2, "delete shortcut failed")
    }

    func leaderKey(_ c: RouteContext) async -> SimResponse {
        ok(["key": .string(state.withLock { $0.leaderKey })])
    }

    func setLeaderKey(_ c: RouteContext) async -> SimResponse {
        guard case let .success(body) = RequestBinder.bind(c.request, "SetLeaderKeyReq", [GoField("Key", .string)]) else {
            return fail(-1, "invalid arguments")
        }
        let key = body.string("Key")
        let ok = state.withLock { s -> Bool in
            if key.isEmpty, s.leaderKey.isEmpty { return false }
            s.leaderKey = key
            return true
        }
        return ok ? self.ok() : fail(-2, "reset failed")
    }

    // MARK: Frame detection

    func frameDetectState(_ c: RouteContext) async -> SimResponse {
        let (file, paused) = state.withLock { ($0.legacyDetectFile, $0.legacyDetectPaused) }
        return ok(["enabled": .bool(file || paused)])
    }

    func setFrameDetect(_ c: RouteContext) async -> SimResponse {
        if profile.detectToggle {
            let enabled = state.withLock { s -> Bool in
                if s.legacyDetectFile || s.legacyDetectPaused {
                    s.legacyDetectFile = false
                    s.legacyDetectPaused = false
                } else {
                    s.legacyDetectFile = true
                }
                return s.legacyDetectFile
            }
            capture.settings.withLock { $0.frameDetect = enabled; $0.detectPausedUntil = nil }
            return ok(["enabled": .bool(enabled)])
        }
        guard case let .success(body) = RequestBinder.bind(c.request, "UpdateFrameDetectReq", [GoField("Enabled", .bool)]) else {
            return fail(-1, "invalid parameters")
        }
        capture.settings.withLock { $0.frameDetect = body.bool("Enabled"); $0.detectPausedUntil = nil }
        return ok()
    }

    func stopFrameDetect(_ c: RouteContext) async -> SimResponse {
        if profile.detectToggle {
            // ≤2.2.2: pause for 20 s in the background, only when detection is on.
            let pause = state.withLock { s -> Bool in
                guard s.legacyDetectFile else { return false }
                s.legacyDetectFile = false
                s.legacyDetectPaused = true
                return true
            }
            if pause {
                let seconds = 20 * configuration.timeScale
                capture.settings.withLock { $0.detectPausedUntil = .now + .milliseconds(seconds * 1000) }
                Task(executorPreference: SimulatorExecutor.shared) { [weak self] in
                    try? await Task.sleep(for: .milliseconds(seconds * 1000))
                    self?.state.withLock { s in
                        if s.legacyDetectPaused {
                            s.legacyDetectPaused = false
                            s.legacyDetectFile = true
                        }
                    }
                }
            }
            return ok()
        }
        guard case let .success(body) = RequestBinder.bind(c.request, "StopFrameDetectReq", [GoField("Duration", .int)]) else {
            return fail(-1, "invalid parameters")
        }
        let seconds = Double(body.int("Duration") > 0 ? body.int("Duration") : 10)
        capture.settings.withLock { $0.frameDetect = false }
        await deviceDelay(milliseconds: seconds * 1000)
        capture.settings.withLock { $0.frameDetect = true; $0.detectPausedUntil = nil }
        return ok()
    }

    // MARK: MJPEG

    func mjpeg(_ c: RouteContext) async -> SimResponse {
        var headers: [(String, String)] = [
            ("Cache-Control", "no-cache"), ("Connection", "keep-alive"),
            ("Content-Type", "multipart/x-mixed-replace; boundary=frame"), ("Pragma", "no-cache"),
        ]
        if profile.mjpegContentLength { headers.append(("X-Server-Date", GoTime.rfc1123UTC())) }
        var response = SimResponse(status: .ok, headers: headers)
        let withLength = profile.mjpegContentLength
        let request = c.request
        response.stream = { [weak self] writer in
            guard let self else { return }
            let (frames, unsubscribe) = self.capture.subscribe()
            defer { unsubscribe() }
            for await frame in frames {
                if !self.sessionStillValid(request) { return }
                var part = Array("--frame\r\nContent-Type: image/jpeg\r\n".utf8)
                if withLength { part += Array("Content-Length: \(frame.jpeg.count)\r\n".utf8) }
                part += Array("\r\n".utf8)
                part += frame.jpeg
                part += Array("\r\n".utf8)
                if self.takeFault(.truncateNextMJPEGPart) {
                    try await writer.writeTruncated(Array(part[0..<(part.count / 2)]), declaredLength: part.count)
                    throw CancellationError()
                }
                if self.takeFault(.truncateMJPEGPartAndContinue) {
                    // The part's headers promise the whole JPEG, about half of it follows.
                    let cut = part.count - frame.jpeg.count / 2 - 2
                    try await writer.write(Array(part[0..<max(cut, 1)]) + Array("\r\n".utf8))
                    continue
                }
                if self.takeFault(.garbleNextMJPEGPart) {
                    let garbage = [UInt8](repeating: 0x5A, count: frame.jpeg.count)
                    var garbled = Array(part[0..<(part.count - frame.jpeg.count - 2)])
                    garbled += garbage + Array("\r\n".utf8)
                    try await writer.write(garbled)
                    continue
                }
                try await writer.write(part)
            }
            throw CancellationError()
        }
        return response
    }

    /// Removes `fault` from the pending faults; true when it was pending.
    func takeFault(_ fault: SimulatorFault) -> Bool {
        state.withLock { s in
            guard let index = s.faults.firstIndex(of: fault) else { return false }
            s.faults.remove(at: index)
            return true
        }
    }
}
