// The machine on the other end of the USB and HDMI cables: it receives every HID report the
// device writes to its gadget (keyboard, relative mouse, absolute mouse), keeps the keys,
// buttons and pointer they describe, types characters into a text console through its
// keyboard layout, and toggles its keyboard LEDs like an operating system does. The console
// is what the capture loop renders into MJPEG frames.

import Foundation
import NanoKVM
import Synchronization

/// One HID report as the device wrote it to its USB gadget.
public struct SimulatorReport: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case keyboard
        case relativeMouse
        case absoluteMouse
    }

    /// Who produced the report inside the device.
    public enum Source: String, Sendable {
        case webSocket
        case paste
        case jiggler
        /// Released by the server when a WebSocket closed (2.4.1+).
        case release
    }

    public var kind: Kind
    public var bytes: [UInt8]
    public var source: Source
    /// CLOCK_MONOTONIC time the report was received, in nanoseconds.
    public var monotonicNanoseconds: UInt64
    /// Seconds since the simulator started.
    public var seconds: Double
    /// False when the host could not take it (powered off).
    public var delivered: Bool
}

/// Current keyboard and mouse state as seen by the host.
public struct SimulatorInputState: Sendable, Equatable {
    public var modifiers: UInt8 = 0
    /// Pressed key usages in report order.
    public var pressedKeys: [UInt8] = []
    public var buttons: UInt8 = 0
    /// Last absolute position (0…32767 on both axes), nil until an absolute report arrived.
    public var absolute: (x: Int, y: Int)? = nil
    /// Sum of all relative movement.
    public var relativeTotal: (x: Int, y: Int) = (0, 0)
    /// Pointer position in screen pixels.
    public var pointer: (x: Int, y: Int) = (0, 0)
    /// Sum of wheel steps (positive = up).
    public var wheelTotal: Int = 0
    public var numLock = false
    public var capsLock = false
    public var scrollLock = false
    /// The host has set its LEDs at least once.
    public var ledsKnown = false

    public static func == (a: SimulatorInputState, b: SimulatorInputState) -> Bool {
        a.modifiers == b.modifiers && a.pressedKeys == b.pressedKeys && a.buttons == b.buttons
            && a.absolute?.x == b.absolute?.x && a.absolute?.y == b.absolute?.y
            && a.relativeTotal == b.relativeTotal && a.pointer == b.pointer && a.wheelTotal == b.wheelTotal
            && a.numLock == b.numLock && a.capsLock == b.capsLock && a.scrollLock == b.scrollLock
    }
}

/// A text console with a fixed grid of character cells.
struct TextConsole: Sendable {
    var columns: Int
    var rows: Int
    var lines: [[Character]]
    var cursorRow = 0
    var cursorColumn = 0
    /// Everything typed since power-on, including what scrolled away.
    var transcript = ""

    init(columns: Int, rows: Int) {
        self.columns = max(columns, 8)
        self.rows = max(rows, 2)
        self.lines = Array(repeating: [], count: self.rows)
    }

    static let banner = "NanoKVM simulated host (kvmlua nanokvm-sim)\n\nnanokvm-sim login: "

    mutating func reset(showBanner: Bool) {
        lines = Array(repeating: [], count: rows)
        cursorRow = 0
        cursorColumn = 0
        transcript = ""
        if showBanner { for c in Self.banner { put(c) } }
    }

    mutating func newline() {
        cursorColumn = 0
        if cursorRow + 1 >= rows {
            lines.removeFirst()
            lines.append([])
        } else {
            cursorRow += 1
        }
    }

    mutating func put(_ c: Character) {
        transcript.append(c)
        render(c)
    }

    /// Draws `c` at the cursor (the transcript keeps the character itself, a tab included).
    private mutating func render(_ c: Character) {
        switch c {
        case "\n":
            newline()
        case "\u{8}":
            if cursorColumn > 0 {
                cursorColumn -= 1
                if lines[cursorRow].count > cursorColumn { lines[cursorRow].remove(at: cursorColumn) }
            }
        case "\t":
            let next = min((cursorColumn / 8 + 1) * 8, columns - 1)
            while cursorColumn < next { render(" ") }
        default:
            if cursorColumn >= columns { newline() }
            var line = lines[cursorRow]
            while line.count < cursorColumn { line.append(" ") }
            if line.count == cursorColumn { line.append(c) } else { line[cursorColumn] = c }
            lines[cursorRow] = line
            cursorColumn += 1
        }
    }

    /// The visible text, one line per row, trailing blanks and empty trailing rows removed.
    var text: String {
        var rendered = lines.map { String($0).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        while let last = rendered.last, last.isEmpty { rendered.removeLast() }
        return rendered.joined(separator: "\n")
    }
}

/// The simulated host: power, console, HID state, report log.
final class VirtualHost: Sendable {
    struct State: Sendable {
        var poweredOn: Bool
        var input = SimulatorInputState()
        var console: TextConsole
        var reports: [SimulatorReport] = []
        var screenVersion: UInt64 = 1
        var width: Int
        var height: Int
        var layout: KeyboardLayout
        /// The OS keyboard driver: key state, a dead key waiting for the next key (de `^` …).
        var keyboard: HostKeyboard
        /// When the HDD LED goes dark again (disk activity after boot).
        var diskBusyUntil: ContinuousClock.Instant?
        var lastHIDInput: ContinuousClock.Instant
        /// The machine that boots (every scene but `console`); nil = the minimal console.
        var machine: Machine?
        /// The machine's screen version last mirrored into `screenVersion`.
        var machineVersion: UInt64 = 0
    }

    let state: Mutex<State>
    let startInstant = ContinuousClock.now
    let startMonotonic = VirtualHost.monotonicNow()
    /// Called (outside the lock) when the host changes its keyboard LEDs.
    let ledObservers = Mutex<[@Sendable (SimulatorInputState) -> Void]>([])
    static let maxLoggedReports = 200_000

    init(
        width: Int, height: Int, layout: KeyboardLayout, poweredOn: Bool, scene: SimulatorScene = .console,
        timeScale: Double = 1, identity: Machine.Identity? = nil
    ) {
        var console = TextConsole(columns: width / BitmapFont.width, rows: height / BitmapFont.height)
        console.reset(showBanner: poweredOn && scene == .console)
        var input = SimulatorInputState()
        input.pointer = (width / 2, height / 2)
        var machine: Machine?
        if scene != .console {
            machine = Machine(
                width: width, height: height, timeScale: timeScale,
                identity: identity ?? Machine.Identity(hostname: "kvmtarget", user: "root", password: "root", clock: nil),
                start: scene, poweredOn: poweredOn, now: .now)
        }
        state = Mutex(State(
            poweredOn: poweredOn, input: input, console: console, width: width, height: height, layout: layout,
            keyboard: HostKeyboard(layout: layout), lastHIDInput: .now, machine: machine))
    }

    /// Runs the machine's timed transitions up to now and mirrors what it did: a `poweroff`
    /// turns the host off, a changed screen bumps `screenVersion`.
    static func syncMachine(_ s: inout State, now: ContinuousClock.Instant = .now) {
        guard var machine = s.machine else { return }
        if s.poweredOn { machine.advance(now: now) }
        if machine.wantsPowerOff {
            machine.wantsPowerOff = false
            machine.powerOff(now: now)
            s.poweredOn = false
            s.diskBusyUntil = nil
            s.input.pressedKeys = []
            s.input.modifiers = 0
        }
        if machine.version != s.machineVersion {
            s.machineVersion = machine.version
            s.screenVersion &+= 1
        }
        s.machine = machine
    }

    static func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    // MARK: Power

    func setPower(_ on: Bool, diskActivity: Duration = .seconds(3)) {
        state.withLock { s in
            guard s.poweredOn != on else { return }
            s.poweredOn = on
            s.console.reset(showBanner: on)
            s.keyboard.reset()
            s.input.pressedKeys = []
            s.input.modifiers = 0
            s.input.buttons = 0
            s.diskBusyUntil = on ? .now + diskActivity : nil
            s.screenVersion &+= 1
            if on { s.machine?.powerOn(now: .now) } else { s.machine?.powerOff(now: .now) }
            Self.syncMachine(&s)
        }
    }

    /// Reset button: the host reboots to the login prompt.
    func reboot(diskActivity: Duration = .seconds(3)) {
        state.withLock { s in
            guard s.poweredOn else { return }
            s.console.reset(showBanner: s.machine == nil)
            s.keyboard.reset()
            s.diskBusyUntil = .now + diskActivity
            s.screenVersion &+= 1
            s.machine?.powerOn(now: .now)
            Self.syncMachine(&s)
        }
    }

    /// The image the device presents to the host changed (nil = none; `cdrom` = as a CD-ROM).
    func setMedia(_ file: String?, cdrom: Bool) {
        state.withLock { s in
            s.machine?.setMedia(file.map { _ in cdrom ? "NanoKVM Virtual CD-ROM" : "NanoKVM Virtual Disk" }, now: .now)
            Self.syncMachine(&s)
        }
    }

    var poweredOn: Bool { state.withLock { $0.poweredOn } }

    var diskBusy: Bool {
        state.withLock { s in
            guard s.poweredOn, let until = s.diskBusyUntil else { return false }
            return ContinuousClock.now < until
        }
    }

    // MARK: Reports

    /// Takes one report as the device writes it to the gadget. Reports of a wrong length for
    /// their device are ignored (the kernel would reject the write).
    func receive(_ kind: SimulatorReport.Kind, _ bytes: [UInt8], source: SimulatorReport.Source) {
        let monotonic = Self.monotonicNow()
        var ledChange: SimulatorInputState?
        var observers: [@Sendable (SimulatorInputState) -> Void] = []
        state.withLock { s in
            let report = SimulatorReport(
                kind: kind, bytes: bytes, source: source, monotonicNanoseconds: monotonic,
                seconds: Double(monotonic &- startMonotonic) / 1e9, delivered: s.poweredOn)
            if s.reports.count >= Self.maxLoggedReports { s.reports.removeFirst(s.reports.count / 2) }
            s.reports.append(report)
            if source != .jiggler { s.lastHIDInput = .now }
            guard s.poweredOn else { return }
            switch kind {
            case .keyboard:
                guard bytes.count == 8 else { return }
                let before = (s.input.numLock, s.input.capsLock, s.input.scrollLock)
                applyKeyboard(bytes, to: &s)
                if before != (s.input.numLock, s.input.capsLock, s.input.scrollLock) {
                    s.input.ledsKnown = true
                    ledChange = s.input
                }
            case .relativeMouse:
                guard bytes.count == 4 else { return }
                s.input.buttons = bytes[0] & 0x1F
                let dx = Int(Int8(bitPattern: bytes[1]))
                let dy = Int(Int8(bitPattern: bytes[2]))
                s.input.relativeTotal = (s.input.relativeTotal.x + dx, s.input.relativeTotal.y + dy)
                s.input.wheelTotal += Int(Int8(bitPattern: bytes[3]))
                s.input.pointer = (
                    min(max(s.input.pointer.x + dx, 0), s.width - 1), min(max(s.input.pointer.y + dy, 0), s.height - 1)
                )
                moveMachinePointer(&s)
            case .absoluteMouse:
                guard bytes.count == 6 else { return }
                s.input.buttons = bytes[0] & 0x1F
                let x = Int(UInt16(bytes[1]) | UInt16(bytes[2]) << 8)
                let y = Int(UInt16(bytes[3]) | UInt16(bytes[4]) << 8)
                s.input.absolute = (x, y)
                s.input.wheelTotal += Int(Int8(bitPattern: bytes[5]))
                // Out-of-range values (the UI's 32768) clamp to the edge, as hosts do.
                s.input.pointer = (
                    min(x, 32767) * (s.width - 1) / 32767, min(y, 32767) * (s.height - 1) / 32767
                )
                moveMachinePointer(&s)
            }
        }
        if let ledChange {
            observers = ledObservers.withLock { $0 }
            for observer in observers { observer(ledChange) }
        }
    }

    /// The minimal console redraws on every pointer move; the machine only where a screen has
    /// a mouse (its version tells).
    private func moveMachinePointer(_ s: inout State) {
        guard s.machine != nil else {
            s.screenVersion &+= 1
            return
        }
        s.machine?.mouse(position: s.input.pointer, buttons: s.input.buttons, now: .now)
        Self.syncMachine(&s)
    }

    private func applyKeyboard(_ bytes: [UInt8], to s: inout State) {
        let modifiers = bytes[0]
        let keys = bytes[2...].filter { $0 != 0 && $0 != 1 }
        let newlyPressed = keys.filter { !s.input.pressedKeys.contains($0) }
        let typed = s.keyboard.apply(modifiers: modifiers, keys: Array(keys), capsLock: s.input.capsLock)
        if let locks = s.keyboard.changedLocks {
            s.input.capsLock = locks.capsLock
            s.input.numLock = locks.numLock
        }
        s.input.modifiers = modifiers
        s.input.pressedKeys = Array(keys)
        let control = modifiers & KeyModifier.anyControl != 0 && modifiers & KeyModifier.anyAlt == 0
        for usage in newlyPressed {
            // The characters the host's OS makes of this key: "" for keys that type nothing.
            var text = ""
            switch usage {
            case 0x28, 0x58: text = "\n"
            case 0x2A: text = "\u{8}"
            case 0x2B: text = "\t"
            case 0x39 where !s.keyboard.keymapDrivesLocks: s.input.capsLock.toggle()
            case 0x53 where !s.keyboard.keymapDrivesLocks: s.input.numLock.toggle()
            case 0x47: s.input.scrollLock.toggle()
            case 0x59...0x62 where s.input.numLock && modifiers & (KeyModifier.anyControl | KeyModifier.anyAlt) == 0:
                text = String(usage == 0x62 ? 0 : Int(usage) - 0x58)
            default:
                if !(control && usage == 0x0F && s.machine == nil) {
                    // Through the host's keyboard driver, composing dead keys as its OS does.
                    text = typed[usage] ?? ""
                }
            }
            if s.machine != nil {
                // The machine's scenes take key events (usage + modifiers) and these characters.
                s.machine?.key(usage, modifiers: modifiers, text: text, now: .now)
            } else if control && usage == 0x0F {
                // Ctrl+L clears the console like a shell does.
                s.console.lines = Array(repeating: [], count: s.console.rows)
                s.console.cursorRow = 0
                s.console.cursorColumn = 0
            } else {
                for character in text { s.console.put(character) }
            }
        }
        if s.machine != nil { Self.syncMachine(&s) } else { s.screenVersion &+= 1 }
    }

    // MARK: Inspection

    var consoleText: String { state.withLock { $0.console.text } }
    var transcript: String { state.withLock { $0.console.transcript } }
    var reports: [SimulatorReport] { state.withLock { $0.reports } }
    var input: SimulatorInputState { state.withLock { $0.input } }

    func clearReports() { state.withLock { $0.reports.removeAll() } }

    func setLayout(_ layout: KeyboardLayout) {
        state.withLock { s in
            s.layout = layout
            s.keyboard = HostKeyboard(layout: layout)
        }
    }
}

extension VirtualHost {
    /// The machine's state (nil for the minimal console), after its timed transitions.
    var machineState: SimulatorMachineState? {
        state.withLock { s in
            Self.syncMachine(&s)
            return s.machine?.state(now: .now)
        }
    }

    /// The scene name: `console` for the minimal console, else the machine's current screen.
    var sceneName: String { machineState?.scene ?? (poweredOn ? "console" : "off") }

    /// The visible text line by line with pixel boxes (nothing while the host is off).
    var screenText: SimulatorScreenText {
        state.withLock { s in
            Self.syncMachine(&s)
            if let machine = s.machine {
                guard s.poweredOn else {
                    return SimulatorScreenText(
                        columns: 0, rows: 0, cellWidth: 0, cellHeight: 0, font: machine.screen.geometry.font.name, lines: [])
                }
                return machine.screen.text
            }
            var lines: [SimulatorTextLine] = []
            if s.poweredOn {
                for (row, line) in s.console.lines.enumerated() {
                    let characters = Array(line)
                    guard let first = characters.firstIndex(where: { $0 != " " }),
                        let last = characters.lastIndex(where: { $0 != " " })
                    else { continue }
                    lines.append(SimulatorTextLine(
                        row: row, text: String(characters[0...last]), x: first * BitmapFont.width, y: row * BitmapFont.height,
                        width: (last - first + 1) * BitmapFont.width, height: BitmapFont.height))
                }
            }
            return SimulatorScreenText(
                columns: s.console.columns, rows: s.console.rows, cellWidth: BitmapFont.width, cellHeight: BitmapFont.height,
                font: "builtin", lines: lines)
        }
    }
}
