// HID over HTTP (protocol §6.3): paste, USB reset, HID-only mode, keyboard LEDs, stored
// shortcuts and the leader key. Real-time keys and mouse go over the WebSocket (HIDSession).

/// The device-side paste layouts (`langue`).
public enum PasteLayout: String, Sendable, CaseIterable {
    /// US QWERTY (also what the device uses for any unknown value).
    case en
    /// German QWERTZ, 2.3.0+.
    case de
    /// French AZERTY, 2.4.1+.
    case fr
    /// Treated as US by the device; the caller must transliterate Cyrillic to QWERTY positions.
    case ru
}

public enum HIDMode: String, Sendable {
    /// Keyboard, mice, USB network and mass storage.
    case normal
    /// Keyboard and mice only (BIOS-friendlier).
    case hidOnly = "hid-only"
}

/// The host's keyboard LEDs as the device last saw them (2.5.0+).
public struct KeyboardLEDs: Sendable, Equatable {
    public var numLock: Bool
    public var capsLock: Bool
    public var scrollLock: Bool
    /// False until the host has sent an LED report.
    public var known: Bool
    /// RFC 3339 time of the last change ("" while unknown).
    public var updatedAt: String

    public init(numLock: Bool, capsLock: Bool, scrollLock: Bool, known: Bool, updatedAt: String) {
        self.numLock = numLock
        self.capsLock = capsLock
        self.scrollLock = scrollLock
        self.known = known
        self.updatedAt = updatedAt
    }

    init(reader: DataReader) throws(NanoKVMError) {
        self.init(
            numLock: try reader.bool("numLock"), capsLock: try reader.bool("capsLock"), scrollLock: try reader.bool("scrollLock"),
            known: try reader.optionalBool("known") ?? true, updatedAt: try reader.optionalString("updatedAt") ?? "")
    }
}

public struct ShortcutKey: Sendable, Equatable {
    /// A `KeyboardEvent.code` such as `ControlLeft` or `KeyA`.
    public var code: String
    /// Display text.
    public var label: String

    public init(code: String, label: String) {
        self.code = code
        self.label = label
    }
}

public struct Shortcut: Sendable, Equatable {
    public var id: String
    public var keys: [ShortcutKey]
}

public struct HIDAPI: Sendable {
    let client: NanoKVMClient

    /// Has the device type `text` itself through its keyboard gadget (`POST /api/hid/paste`).
    /// Text longer than one request may carry is sent in several requests, split on character
    /// boundaries; each returns after its characters are typed. Characters the device's layout
    /// lacks are skipped by the device. Returns the number of requests sent.
    @discardableResult
    public func paste(_ text: String, layout: PasteLayout? = nil) async throws(NanoKVMError) -> Int {
        var languageField: String?
        if let layout {
            let known = client.profile.pasteLayouts
            if known.contains(layout.rawValue) {
                languageField = layout.rawValue
            } else if layout != .en && layout != .ru {
                throw client.unsupported(.paste, "paste layout '\(layout.rawValue)' needs firmware \(layout == .de ? "2.3.0" : "2.4.1") or later")
            }
        }
        let limit = client.profile.pasteLimit
        let chunks: [String]
        do {
            chunks = try Self.chunks(of: text, limit: limit)
        } catch {
            throw NanoKVMError(error.kind, error.message, method: "POST", path: APIEndpoint.paste.path, device: client.device)
        }
        let delay = client.profile.pasteCharacterDelay
        for chunk in chunks {
            var body: [(key: String, value: JSONValue)] = [("content", .string(chunk))]
            if let languageField { body.append(("langue", .string(languageField))) }
            // The answer comes after the last character is typed: allow 1.5× the typing time.
            let typing = delay * (chunk.unicodeScalars.count * 3 / 2)
            try await client.call(.paste, body: .json(.object(body)), timeout: client.timeout + typing + .seconds(5))
        }
        return chunks.count
    }

    /// Splits `text` into pieces the firmware accepts, never inside a character (grapheme).
    public static func chunks(of text: String, limit: PasteLimit) throws(NanoKVMError) -> [String] {
        let maximum: Int
        let measure: (Character) -> Int
        switch limit {
        case .utf8Bytes(let bytes):
            maximum = bytes
            measure = { $0.utf8.count }
        case .codePoints(let count):
            maximum = count
            measure = { $0.unicodeScalars.count }
        }
        guard maximum > 0 else { throw NanoKVMError(.usage, "paste limit must be positive") }
        var chunks: [String] = []
        var current = ""
        var size = 0
        for character in text {
            let cost = measure(character)
            guard cost <= maximum else {
                throw NanoKVMError(.usage, "a single character of the text is longer than one paste request may be")
            }
            if size + cost > maximum {
                chunks.append(current)
                current = ""
                size = 0
            }
            current.append(character)
            size += cost
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }

    /// Resets the USB HID function (the host sees the device re-enumerate; blocks ≥1 s).
    public func reset() async throws(NanoKVMError) {
        try await client.call(.hidReset, timeout: client.timeout + .seconds(10))
    }

    public func mode() async throws(NanoKVMError) -> HIDMode {
        let data = try await client.call(.hidMode)
        let text = try client.read(data, .hidMode) { reader throws(NanoKVMError) in try reader.string("mode") }
        guard let mode = HIDMode(rawValue: text) else {
            throw NanoKVMError(.protocol, "unknown HID mode '\(text)'", method: "GET", path: APIEndpoint.hidMode.path, device: client.device)
        }
        return mode
    }

    /// Switches between normal and HID-only mode. A different mode makes the device reboot
    /// about half a second after answering; the same mode is an immediate success.
    public func setMode(_ mode: HIDMode) async throws(NanoKVMError) {
        try await client.call(.setHIDMode, body: .json(["mode": .string(mode.rawValue)]))
    }

    /// The host's keyboard LEDs (2.5.0+).
    public func keyboardLEDs() async throws(NanoKVMError) -> KeyboardLEDs {
        let data = try await client.call(.keyboardLEDs)
        return try client.read(data, .keyboardLEDs) { reader throws(NanoKVMError) in try KeyboardLEDs(reader: reader) }
    }

    public func shortcuts() async throws(NanoKVMError) -> [Shortcut] {
        let data = try await client.call(.shortcuts)
        return try client.read(data, .shortcuts) { reader throws(NanoKVMError) in
            var result: [Shortcut] = []
            for item in try reader.objects("shortcuts") {
                var keys: [ShortcutKey] = []
                for key in try item.objects("keys") {
                    keys.append(ShortcutKey(code: try key.string("code"), label: try key.optionalString("label") ?? ""))
                }
                result.append(Shortcut(id: try item.string("id"), keys: keys))
            }
            return result
        }
    }

    /// Stores a shortcut (the device does not return its id; list again to find it).
    public func addShortcut(keys: [ShortcutKey]) async throws(NanoKVMError) {
        guard !keys.isEmpty else {
            throw NanoKVMError(.usage, "a shortcut needs at least one key", method: "POST", path: APIEndpoint.addShortcut.path, device: client.device)
        }
        let list = JSONValue.array(keys.map { ["code": .string($0.code), "label": .string($0.label)] })
        try await client.call(.addShortcut, body: .json(["keys": list]))
    }

    public func deleteShortcut(id: String) async throws(NanoKVMError) {
        try await client.call(.deleteShortcut, body: .json(["id": .string(id)]))
    }

    /// The leader key (a `KeyboardEvent.code`), nil when none is set (2.3.4+).
    public func leaderKey() async throws(NanoKVMError) -> String? {
        let data = try await client.call(.leaderKey)
        let key = try client.read(data, .leaderKey) { reader throws(NanoKVMError) in try reader.optionalString("key") ?? "" }
        return key.isEmpty ? nil : key
    }

    /// Sets the leader key; nil clears it (clearing when none is set is not an error).
    public func setLeaderKey(_ key: String?) async throws(NanoKVMError) {
        let envelope = try await client.callEnvelope(.setLeaderKey, body: .json(["key": .string(key ?? "")]))
        if envelope.code == 0 || (key == nil && envelope.code == -2) { return }
        throw client.apiError(envelope, endpoint: .setLeaderKey)
    }
}

extension NanoKVMClient {
    public var hid: HIDAPI { HIDAPI(client: self) }
}
