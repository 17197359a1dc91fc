// The simulated target machine behind the cables: a state machine driven only by what a real
// target sees (power and reset, keyboard key events and the characters its OS makes of them,
// mouse position and buttons, the mounted image) and by time since each screen appeared.
// Firmware POST → setup / boot menu → boot devices in order → GRUB → Linux console login, or
// the installer from the virtual CD-ROM. Every screen is composed into a `TextScreen`;
// `version` changes only when what is on the screen changes.
//
// Timings: each screen's base duration (POST 3 s, GRUB 5 s, …) is multiplied by the
// simulator's `timeScale`, with a floor of 5 % so a "press DEL now" window still exists at
// scale 0 (tests run the whole boot in a few hundred milliseconds).

import Foundation
import NanoKVM

/// What the simulated host shows at start (`scene`); the minimal console is the default.
public enum SimulatorScene: String, Sendable, CaseIterable {
    /// The minimal echo console (no firmware, no boot): what existing tests expect.
    case console
    /// The machine from power-on: POST, then the boot order (same as `post`).
    case machine
    case post
    /// Firmware setup, already entered.
    case bios
    /// The firmware's boot menu (F12).
    case bootmenu
    case grub
    /// The installer's menu (as booted from the virtual CD-ROM).
    case installer
    /// The Linux console's login prompt.
    case login
}

/// A device of the boot order.
enum BootDevice: String, Sendable, CaseIterable {
    case disk, media, network
}

/// A clickable button on the screen, in frame pixels (inspection and hit tests).
public struct SimulatorButton: Sendable, Equatable {
    public var label: String
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public var selected: Bool
}

/// The machine's state for tests (`GET /__sim/state` → `machine`).
public struct SimulatorMachineState: Sendable, Equatable {
    /// off, post, bios, bootmenu, pxe, noboot, grub, kernel, login, password, shell, installer,
    /// installer-dialog, installing, installed.
    public var scene: String
    /// What is highlighted: the setup tab and item, a menu entry, a dialog button.
    public var selection: String?
    /// The setup tab (bios only).
    public var tab: String?
    /// The saved boot order (as the firmware lists it: the virtual media only while mounted).
    public var bootOrder: [String]
    /// The boot order being edited in setup (equal to `bootOrder` outside setup).
    public var pendingBootOrder: [String]
    /// The text cursor (row, column) and whether it is lit right now; nil when hidden.
    public var cursor: (row: Int, column: Int, visible: Bool)?
    public var pointerShown: Bool
    public var buttons: [SimulatorButton]
    /// Whether the POST's "press DEL" window is open (post only).
    public var setupWindowOpen: Bool
    public var loggedIn: Bool

    public static func == (a: SimulatorMachineState, b: SimulatorMachineState) -> Bool {
        a.scene == b.scene && a.selection == b.selection && a.tab == b.tab && a.bootOrder == b.bootOrder
            && a.pendingBootOrder == b.pendingBootOrder && a.cursor?.row == b.cursor?.row
            && a.cursor?.column == b.cursor?.column && a.cursor?.visible == b.cursor?.visible
            && a.pointerShown == b.pointerShown && a.buttons == b.buttons && a.setupWindowOpen == b.setupWindowOpen
            && a.loggedIn == b.loggedIn
    }
}

/// HID usages the scenes react to.
enum Usage {
    static let enter: UInt8 = 0x28, escape: UInt8 = 0x29, backspace: UInt8 = 0x2A, tab: UInt8 = 0x2B
    static let space: UInt8 = 0x2C, minus: UInt8 = 0x2D, equal: UInt8 = 0x2E
    static let f2: UInt8 = 0x3B, f10: UInt8 = 0x43, f12: UInt8 = 0x45
    static let delete: UInt8 = 0x4C, right: UInt8 = 0x4F, left: UInt8 = 0x50, down: UInt8 = 0x51, up: UInt8 = 0x52
    static let keypadMinus: UInt8 = 0x56, keypadPlus: UInt8 = 0x57, keypadEnter: UInt8 = 0x58
    static let keypadDelete: UInt8 = 0x63
    static let c: UInt8 = 0x06, d: UInt8 = 0x07, l: UInt8 = 0x0F
}

struct Machine: Sendable {
    enum Screen: String, Sendable {
        case off, post, setup = "bios", bootMenu = "bootmenu", pxe, noBoot = "noboot", grub, kernel, console
        case installer, installerDialog = "installer-dialog", installing, installed
    }

    enum ConsoleMode: String, Sendable { case login, password, shell }

    /// What the firmware keeps in NVRAM (survives power cycles).
    struct Settings: Sendable, Equatable {
        var bootOrder: [BootDevice] = [.disk, .media, .network]
        var language = "English"
        var virtualization = "Enabled"
        var sataMode = "AHCI"
        var fastBoot = "Disabled"
    }

    struct Identity: Sendable {
        var hostname: String
        var user: String
        var password: String
        /// A fixed wall clock (tests); nil = the real time.
        var clock: Date?
    }

    let identity: Identity
    /// Seconds of scene time per second of base duration (see the header).
    let scale: Double
    let vga: TextGeometry
    let framebuffer: TextGeometry

    private(set) var screenKind: Screen = .off
    private(set) var phaseStart: ContinuousClock.Instant
    private(set) var poweredOnAt: ContinuousClock.Instant
    var saved = Settings()
    var pending = Settings()
    /// The mounted image as the firmware sees it: nil, or its label.
    var mediaLabel: String?
    private var bootQueue: [BootDevice] = []

    // Setup.
    private var tab = 0
    private var item = 0
    private var popup: (title: String, options: [String], selected: Int)?
    /// The save-and-reset confirmation's selected button (0 Yes, 1 No) while it is open.
    private var confirmSave: Int?
    // Boot menu, GRUB, installer.
    private var menuIndex = 0
    private var grubIndex = 0
    private var countdownStopped = false
    private var installerIndex = 0
    private var dialogButton = 0
    // Linux console.
    var console: TextConsole
    private(set) var consoleMode = ConsoleMode.login
    private var typed = ""
    private var loginName = ""
    private var loggedIn = false

    /// Set when the OS powers the machine off (`poweroff`); the host applies it.
    var wantsPowerOff = false
    /// Pointer position in frame pixels and buttons, from the host.
    var pointer: (x: Int, y: Int) = (0, 0)
    private var buttons: UInt8 = 0

    private(set) var screen: TextScreen
    private(set) var version: UInt64 = 1

    init(width: Int, height: Int, timeScale: Double, identity: Identity, start: SimulatorScene, poweredOn: Bool, now: ContinuousClock.Instant) {
        self.identity = identity
        self.scale = max(timeScale, 0.05)
        let vgaFonts = ["Lat15-VGA16", "Lat15-VGA28x16", "Lat15-VGA32x16"].compactMap { PSFFont.named($0) }
        vga = TextGeometry.fixed(columns: 80, rows: 25, fonts: vgaFonts.isEmpty ? [PSFFont.builtin] : vgaFonts, width: width, height: height)
        let big = width >= 1920 && height >= 1080
        let consoleFont = PSFFont.first(of: big ? ["Lat15-TerminusBold32x16", "Lat15-Terminus16"] : ["Lat15-Terminus16"])
        framebuffer = TextGeometry.filling(font: consoleFont, scale: 1, width: width, height: height)
        console = TextConsole(columns: framebuffer.columns, rows: framebuffer.rows)
        phaseStart = now
        poweredOnAt = now
        screen = TextScreen(geometry: vga)
        pointer = (width / 2, height / 2)
        if poweredOn { powerOn(now: now, at: start) }
        refresh(now: now)
    }

    // MARK: Power and media

    mutating func powerOn(now: ContinuousClock.Instant, at start: SimulatorScene = .post) {
        poweredOnAt = now
        pending = saved
        popup = nil
        confirmSave = nil
        bootQueue = effectiveOrder(saved)
        switch start {
        case .console, .machine, .post: enter(.post, now)
        case .bios: enterSetup(now)
        case .bootmenu: menuIndex = 0; enter(.bootMenu, now)
        case .grub: enterGrub(now)
        case .installer: installerIndex = 0; enter(.installer, now)
        case .login: startConsole(now, kernelLines: false)
        }
        refresh(now: now)
    }

    mutating func powerOff(now: ContinuousClock.Instant) {
        enter(.off, now)
        loggedIn = false
        refresh(now: now)
    }

    mutating func setMedia(_ label: String?, now: ContinuousClock.Instant) {
        mediaLabel = label
        refresh(now: now)
    }

    func label(_ device: BootDevice) -> String {
        switch device {
        case .disk: return "Hard Disk"
        case .media: return mediaLabel ?? "NanoKVM Virtual CD-ROM"
        case .network: return "Network"
        }
    }

    /// The boot order as listed: the virtual media only while an image is mounted.
    func effectiveOrder(_ settings: Settings) -> [BootDevice] {
        settings.bootOrder.filter { $0 != .media || mediaLabel != nil }
    }

    // MARK: Time

    private func seconds(_ base: Double) -> Duration { .milliseconds(Int64(base * scale * 1000)) }

    private var deadline: ContinuousClock.Instant? {
        switch screenKind {
        case .post: return phaseStart + seconds(3)
        case .pxe: return phaseStart + seconds(1.5)
        case .grub: return countdownStopped ? nil : phaseStart + seconds(5)
        case .kernel: return phaseStart + seconds(1.5)
        case .installing: return phaseStart + seconds(2)
        default: return nil
        }
    }

    /// Applies every timed transition due by `now` (each at its own deadline, so the result
    /// does not depend on how often this is called), then recomposes the screen.
    mutating func advance(now: ContinuousClock.Instant) {
        var guardCount = 0
        while let due = deadline, due <= now, guardCount < 32 {
            guardCount += 1
            switch screenKind {
            case .post, .pxe: bootNext(due)
            case .grub: bootGrubEntry(due)
            case .kernel: enter(.console, due); showLoginPrompt()
            case .installing: enter(.installed, due)
            default: break
            }
        }
        refresh(now: now)
    }

    private mutating func enter(_ kind: Screen, _ at: ContinuousClock.Instant) {
        screenKind = kind
        phaseStart = at
    }

    private func setupWindowOpen(_ now: ContinuousClock.Instant) -> Bool {
        screenKind == .post && now >= phaseStart + seconds(0.6)
    }

    // MARK: Boot

    private mutating func bootNext(_ at: ContinuousClock.Instant) {
        guard !bootQueue.isEmpty else { enter(.noBoot, at); return }
        boot(bootQueue.removeFirst(), at)
    }

    private mutating func boot(_ device: BootDevice, _ at: ContinuousClock.Instant) {
        switch device {
        case .disk: enterGrub(at)
        case .media:
            if mediaLabel == nil { bootNext(at); return }
            installerIndex = 0
            enter(.installer, at)
        case .network: enter(.pxe, at)
        }
    }

    private mutating func enterGrub(_ at: ContinuousClock.Instant) {
        grubIndex = 0
        countdownStopped = false
        enter(.grub, at)
    }

    private mutating func bootGrubEntry(_ at: ContinuousClock.Instant) {
        if grubIndex == 2 { enterSetup(at); return }
        startConsole(at, kernelLines: true)
    }

    private mutating func enterSetup(_ at: ContinuousClock.Instant) {
        pending = saved
        tab = 0
        item = 0
        popup = nil
        confirmSave = nil
        enter(.setup, at)
    }

    private mutating func startConsole(_ at: ContinuousClock.Instant, kernelLines: Bool) {
        console.reset(showBanner: false)
        loggedIn = false
        if kernelLines {
            for line in Self.kernelLog { for c in line { console.put(c) }; console.put("\n") }
            enter(.kernel, at)
        } else {
            enter(.console, at)
            showLoginPrompt()
        }
    }

    private mutating func showLoginPrompt() {
        console.reset(showBanner: false)
        write("Debian GNU/Linux 12 \(identity.hostname) tty1\n\n\(identity.hostname) login: ")
        consoleMode = .login
        typed = ""
    }

    static let kernelLog = [
        "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC",
        "[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=/dev/sda1 ro quiet",
        "[    0.412345] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
        "[    0.523456] input: NanoKVM Keyboard as /devices/pci0000:00/usb1/1-1/input/input2",
        "[    1.034567] EXT4-fs (sda1): mounted filesystem with ordered data mode.",
        "[    1.456789] systemd[1]: Reached target Multi-User System.",
    ]

    // MARK: Input

    /// One newly pressed key: its usage, the modifiers held, and the characters the host's
    /// keyboard layout made of it (empty for keys that type nothing).
    mutating func key(_ usage: UInt8, modifiers: UInt8, text: String, now: ContinuousClock.Instant) {
        advance(now: now)
        switch screenKind {
        case .off, .kernel, .pxe, .installing: break
        case .post:
            // Keys before the window opens are lost, as on real firmware (scripts repeat them).
            guard setupWindowOpen(now) else { break }
            if usage == Usage.delete || usage == Usage.f2 || usage == Usage.keypadDelete { enterSetup(now) }
            if usage == Usage.f12 { menuIndex = 0; enter(.bootMenu, now) }
        case .setup: setupKey(usage, text: text, now: now)
        case .bootMenu: bootMenuKey(usage, now: now)
        case .noBoot: powerOn(now: now)
        case .grub: grubKey(usage, now: now)
        case .console: consoleKey(usage, modifiers: modifiers, text: text, now: now)
        case .installer:
            switch usage {
            case Usage.up: installerIndex = max(installerIndex - 1, 0)
            case Usage.down: installerIndex = min(installerIndex + 1, Self.installerEntries.count - 1)
            case Usage.enter, Usage.keypadEnter: dialogButton = 0; enter(.installerDialog, now)
            default: break
            }
        case .installerDialog:
            switch usage {
            case Usage.left, Usage.right, Usage.tab: dialogButton = 1 - dialogButton
            case Usage.enter, Usage.keypadEnter, Usage.space: answerDialog(yes: dialogButton == 0, now: now)
            case Usage.escape: enter(.installer, now)
            default:
                if text.lowercased() == "y" { answerDialog(yes: true, now: now) }
                if text.lowercased() == "n" { answerDialog(yes: false, now: now) }
            }
        case .installed:
            if usage == Usage.enter || usage == Usage.keypadEnter || usage == Usage.space { powerOn(now: now) }
        }
        refresh(now: now)
    }

    /// A mouse report: the pointer moved to `position` (frame pixels) with `buttons` held.
    mutating func mouse(position: (x: Int, y: Int), buttons newButtons: UInt8, now: ContinuousClock.Instant) {
        advance(now: now)
        pointer = position
        let pressed = newButtons & ~buttons
        buttons = newButtons
        if pressed & 0x01 != 0, hasMouse, let hit = currentButtons().firstIndex(where: { button in
            position.x >= button.x && position.x < button.x + button.width && position.y >= button.y
                && position.y < button.y + button.height
        }) {
            switch screenKind {
            case .installerDialog: answerDialog(yes: hit == 0, now: now)
            case .installed: powerOn(now: now)
            default: break
            }
        }
        refresh(now: now)
    }

    private mutating func answerDialog(yes: Bool, now: ContinuousClock.Instant) {
        if yes { enter(.installing, now) } else { enter(.installer, now) }
    }

    var hasMouse: Bool { [.installer, .installerDialog, .installing, .installed].contains(screenKind) }

    private mutating func grubKey(_ usage: UInt8, now: ContinuousClock.Instant) {
        switch usage {
        case Usage.up: countdownStopped = true; grubIndex = max(grubIndex - 1, 0)
        case Usage.down: countdownStopped = true; grubIndex = min(grubIndex + 1, Self.grubEntries.count - 1)
        case Usage.enter, Usage.keypadEnter: bootGrubEntry(now)
        default: countdownStopped = true
        }
    }

    private mutating func bootMenuKey(_ usage: UInt8, now: ContinuousClock.Instant) {
        let devices = effectiveOrder(saved)
        switch usage {
        case Usage.up: menuIndex = max(menuIndex - 1, 0)
        case Usage.down: menuIndex = min(menuIndex + 1, devices.count)
        case Usage.escape:
            bootQueue = devices
            bootNext(now)
        case Usage.enter, Usage.keypadEnter:
            if menuIndex >= devices.count { enterSetup(now); return }
            // One-time boot: the chosen device, then the rest of the order if it fails.
            bootQueue = devices.filter { $0 != devices[menuIndex] }
            boot(devices[menuIndex], now)
        default: break
        }
    }

    // MARK: Setup

    static let tabs = ["Main", "Advanced", "Boot", "Save & Exit"]

    private struct SetupItem {
        var label: String
        var value: String?
        var options: [String]
        var help: String
    }

    private func setupItems(_ now: ContinuousClock.Instant) -> [SetupItem] {
        switch tab {
        case 0:
            return [
                SetupItem(label: "System Language", value: pending.language, options: ["English", "Français", "Deutsch"],
                          help: "Choose the system default language."),
            ]
        case 1:
            return [
                SetupItem(label: "Virtualization Technology", value: pending.virtualization, options: ["Enabled", "Disabled"],
                          help: "Hardware assisted virtualization (VT-x/AMD-V)."),
                SetupItem(label: "SATA Mode", value: pending.sataMode, options: ["AHCI", "IDE", "RAID"],
                          help: "How the SATA controller runs."),
            ]
        case 2:
            let order = effectiveOrder(pending)
            var items = order.enumerated().map { i, device in
                SetupItem(label: "Boot Option #\(i + 1)", value: label(device), options: order.map { label($0) },
                          help: "Sets the system boot order. +/- moves the device up or down.")
            }
            items.append(SetupItem(label: "Fast Boot", value: pending.fastBoot, options: ["Disabled", "Enabled"],
                                   help: "Skips some devices during POST."))
            return items
        default:
            return [
                SetupItem(label: "Save Changes and Reset", value: nil, options: [], help: "Saves the changes and resets the system."),
                SetupItem(label: "Discard Changes and Exit", value: nil, options: [], help: "Leaves setup without saving; boot continues."),
                SetupItem(label: "Restore Defaults", value: nil, options: [], help: "Restores the default values of every option."),
            ]
        }
    }

    private mutating func setupKey(_ usage: UInt8, text: String, now: ContinuousClock.Instant) {
        if let dialog = confirmSave {
            switch usage {
            case Usage.left, Usage.right, Usage.tab: confirmSave = 1 - dialog
            case Usage.enter, Usage.keypadEnter:
                confirmSave = nil
                if dialog == 0 {
                    saved = pending
                    powerOn(now: now)
                }
            case Usage.escape: confirmSave = nil
            default: break
            }
            return
        }
        if var list = popup {
            switch usage {
            case Usage.up: list.selected = max(list.selected - 1, 0); popup = list
            case Usage.down: list.selected = min(list.selected + 1, list.options.count - 1); popup = list
            case Usage.enter, Usage.keypadEnter:
                popup = nil
                choose(list.options[list.selected])
            case Usage.escape: popup = nil
            default: break
            }
            return
        }
        let items = setupItems(now)
        switch usage {
        case Usage.left: tab = (tab + Self.tabs.count - 1) % Self.tabs.count; item = 0
        case Usage.right: tab = (tab + 1) % Self.tabs.count; item = 0
        case Usage.up: item = max(item - 1, 0)
        case Usage.down: item = min(item + 1, max(items.count - 1, 0))
        case Usage.f10: confirmSave = 0
        case Usage.escape:
            // Leave without saving: the boot continues from the saved order.
            pending = saved
            bootQueue = effectiveOrder(saved)
            bootNext(now)
        case Usage.enter, Usage.keypadEnter:
            guard items.indices.contains(item) else { return }
            if tab == 3 {
                switch item {
                case 0: confirmSave = 0
                case 1:
                    pending = saved
                    bootQueue = effectiveOrder(saved)
                    bootNext(now)
                default: pending = Settings()
                }
            } else if !items[item].options.isEmpty {
                let options = items[item].options
                popup = (items[item].label, options, options.firstIndex(of: items[item].value ?? "") ?? 0)
            }
        default:
            if tab == 2, text == "+" || usage == Usage.keypadPlus { moveBootOption(by: -1) }
            if tab == 2, text == "-" || usage == Usage.keypadMinus { moveBootOption(by: 1) }
        }
    }

    /// Moves the selected boot option up (-1) or down (+1) among the listed devices.
    private mutating func moveBootOption(by offset: Int) {
        var order = effectiveOrder(pending)
        let target = item + offset
        guard order.indices.contains(item), order.indices.contains(target) else { return }
        order.swapAt(item, target)
        pending.bootOrder = merged(order)
        item = target
    }

    /// The full order from a listed one: an unlisted device (the media while nothing is
    /// mounted) keeps its place.
    private func merged(_ listed: [BootDevice]) -> [BootDevice] {
        var result = listed
        for (index, device) in pending.bootOrder.enumerated() where !listed.contains(device) {
            result.insert(device, at: min(index, result.count))
        }
        return result
    }

    private mutating func choose(_ option: String) {
        switch (tab, item) {
        case (0, 0): pending.language = option
        case (1, 0): pending.virtualization = option
        case (1, 1): pending.sataMode = option
        case (2, _):
            var order = effectiveOrder(pending)
            if item == order.count { pending.fastBoot = option; return }
            guard let chosen = order.firstIndex(where: { label($0) == option }), order.indices.contains(item) else { return }
            order.swapAt(item, chosen)
            pending.bootOrder = merged(order)
        default: break
        }
    }

    // MARK: Console

    private mutating func write(_ text: String) { for c in text { console.put(c) } }

    private var prompt: String { "\(loginName)@\(identity.hostname):~# " }

    private mutating func consoleKey(_ usage: UInt8, modifiers: UInt8, text: String, now: ContinuousClock.Instant) {
        let control = modifiers & KeyModifier.anyControl != 0 && modifiers & KeyModifier.anyAlt == 0
        if control {
            switch usage {
            case Usage.c:
                write("^C\n")
                typed = ""
                if consoleMode == .shell { write(prompt) } else { showLoginPrompt() }
            case Usage.l where consoleMode == .shell:
                console.reset(showBanner: false)
                write(prompt + typed)
            case Usage.d where consoleMode == .shell && typed.isEmpty:
                loggedIn = false
                showLoginPrompt()
            default: break
            }
            return
        }
        switch usage {
        case Usage.enter, Usage.keypadEnter:
            let line = typed
            typed = ""
            write("\n")
            submit(line, now: now)
        case Usage.backspace:
            guard !typed.isEmpty else { return }
            typed.removeLast()
            if consoleMode != .password { console.put("\u{8}") }
        default:
            for character in text where !character.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                typed.append(character)
                if consoleMode != .password { console.put(character) }
            }
        }
    }

    private mutating func submit(_ line: String, now: ContinuousClock.Instant) {
        switch consoleMode {
        case .login:
            if line.isEmpty { write("\(identity.hostname) login: "); return }
            loginName = line
            consoleMode = .password
            write("Password: ")
        case .password:
            if loginName == identity.user && line == identity.password {
                consoleMode = .shell
                loggedIn = true
                write("Linux \(identity.hostname) 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64\n\n")
                write(prompt)
            } else {
                write("\nLogin incorrect\n\(identity.hostname) login: ")
                consoleMode = .login
            }
        case .shell:
            run(line.trimmingCharacters(in: .whitespaces), now: now)
        }
    }

    private mutating func run(_ command: String, now: ContinuousClock.Instant) {
        let words = command.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        switch words.first {
        case nil: break
        case "echo": write(words.dropFirst().joined(separator: " ") + "\n")
        case "uname":
            write(words.contains("-a")
                ? "Linux \(identity.hostname) 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) x86_64 GNU/Linux\n"
                : "Linux\n")
        case "hostname": write(identity.hostname + "\n")
        case "whoami": write(loginName + "\n")
        case "ls": write("install.log  notes.txt\n")
        case "date": write(Self.dateLine(wallClock) + "\n")
        case "clear":
            console.reset(showBanner: false)
        case "reboot":
            write("reboot: Restarting system\n")
            powerOn(now: now)
            return
        case "poweroff":
            write("reboot: Power down\n")
            wantsPowerOff = true
            return
        case "exit", "logout":
            loggedIn = false
            showLoginPrompt()
            return
        default:
            write("-bash: \(words[0]): command not found\n")
        }
        write(prompt)
    }

    // MARK: Clock

    var wallClock: Date { identity.clock ?? Date() }

    static func clockParts(_ date: Date) -> tm {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        return parts
    }

    static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// `Thu Dec  3 13:26:51 UTC 2026`, as `date` prints it.
    static func dateLine(_ date: Date) -> String {
        let t = clockParts(date)
        let day = t.tm_mday < 10 ? " \(t.tm_mday)" : "\(t.tm_mday)"
        return "\(weekdays[Int(t.tm_wday) % 7]) \(months[Int(t.tm_mon) % 12]) \(day) \(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec)) UTC \(t.tm_year + 1900)"
    }

    // MARK: Composition

    mutating func refresh(now: ContinuousClock.Instant) {
        let composed = compose(now: now)
        if composed != screen {
            screen = composed
            version &+= 1
        }
    }

    /// The cursor blinks as the Linux console's does (on and off every 0.5 s, from power-on,
    /// so equal inputs at equal times give equal frames; not scaled).
    private func cursorLit(_ now: ContinuousClock.Instant) -> Bool {
        let elapsed = now - poweredOnAt
        let halfPeriods = elapsed / .milliseconds(500)
        return Int(halfPeriods) % 2 == 0
    }

    static let grubEntries = ["Debian GNU/Linux", "Advanced options for Debian GNU/Linux", "UEFI Firmware Settings"]
    static let installerEntries = ["Install", "Graphical install", "Advanced options"]

    func compose(now: ContinuousClock.Instant) -> TextScreen {
        switch screenKind {
        case .off: return TextScreen(geometry: vga)
        case .post: return composePost(now)
        case .setup: return composeSetup(now)
        case .bootMenu: return composeBootMenu()
        case .pxe: return composePXE()
        case .noBoot:
            var s = TextScreen(geometry: vga)
            s.put("Reboot and Select proper Boot device", row: 0, column: 0, fg: VGAColor.grey, bg: VGAColor.black)
            s.put("or Insert Boot Media in selected Boot device and press a key", row: 1, column: 0, fg: VGAColor.grey, bg: VGAColor.black)
            return s
        case .grub: return composeGrub(now)
        case .kernel, .console: return composeConsole(now)
        case .installer: return composeInstaller()
        case .installerDialog, .installing, .installed: return composeDialog(now)
        }
    }

    private func composePost(_ now: ContinuousClock.Instant) -> TextScreen {
        var s = TextScreen(geometry: vga)
        let grey = VGAColor.grey, black = VGAColor.black
        s.put("NanoKVM Simulated Firmware  Version 2.20.1275  (C) 2026 kvmlua", row: 1, column: 1, fg: VGAColor.white, bg: black)
        s.put("CPU: Simulated x86-64 Processor @ 3.00GHz", row: 3, column: 1, fg: grey, bg: black)
        if now >= phaseStart + seconds(0.3) { s.put("Memory Test: 16384M OK", row: 4, column: 1, fg: grey, bg: black) }
        s.put("USB Devices total: 1 Keyboard, 1 Mouse, 1 Hub", row: 6, column: 1, fg: grey, bg: black)
        s.put("Detected ATA Devices: SATA0 Hard Disk", row: 7, column: 1, fg: grey, bg: black)
        if let mediaLabel { s.put("Detected USB Devices: \(mediaLabel)", row: 8, column: 1, fg: grey, bg: black) }
        if setupWindowOpen(now) {
            s.put("Press DEL to enter Setup, F12 for Boot Menu", row: 23, column: 1, fg: VGAColor.white, bg: black)
        }
        return s
    }

    private func composeSetup(_ now: ContinuousClock.Instant) -> TextScreen {
        let blue = VGAColor.blue, grey = VGAColor.grey, white = VGAColor.white, cyan = VGAColor.cyan
        var s = TextScreen(geometry: vga, background: blue)
        s.fillBox(top: 0, left: 0, width: 80, height: 25, fg: grey, bg: blue)
        s.fill(row: 0, fg: blue, bg: cyan)
        s.put(" NanoKVM Setup Utility", row: 0, column: 0, fg: white, bg: cyan)
        let t = Self.clockParts(wallClock)
        let clock = "\(Self.weekdays[Int(t.tm_wday) % 7]) \(Self.two(t.tm_mon + 1))/\(Self.two(t.tm_mday))/\(t.tm_year + 1900) \(Self.two(t.tm_hour)):\(Self.two(t.tm_min)):\(Self.two(t.tm_sec)) "
        s.put(clock, row: 0, column: 80 - clock.count, fg: white, bg: cyan)
        var column = 1
        for (i, name) in Self.tabs.enumerated() {
            let label = " \(name) "
            s.put(label, row: 1, column: column, fg: i == tab ? blue : white, bg: i == tab ? grey : blue)
            column += label.count + 1
        }
        s.fill(row: 2, "\u{2500}", fg: grey, bg: blue)
        for r in 3..<22 { s.put("\u{2502}", row: r, column: 54, fg: grey, bg: blue) }
        let items = setupItems(now)
        if tab == 0 {
            s.put("BIOS Version", row: 4, column: 3, fg: grey, bg: blue)
            s.put("NKVM-SIM 2.20.1275", row: 4, column: 30, fg: white, bg: blue)
            s.put("Total Memory", row: 5, column: 3, fg: grey, bg: blue)
            s.put("16384 MB", row: 5, column: 30, fg: white, bg: blue)
            s.put("System Date", row: 6, column: 3, fg: grey, bg: blue)
            s.put("[\(Self.two(t.tm_mon + 1))/\(Self.two(t.tm_mday))/\(t.tm_year + 1900)]", row: 6, column: 30, fg: white, bg: blue)
            s.put("System Time", row: 7, column: 3, fg: grey, bg: blue)
            s.put("[\(Self.two(t.tm_hour)):\(Self.two(t.tm_min)):\(Self.two(t.tm_sec))]", row: 7, column: 30, fg: white, bg: blue)
        }
        let firstRow = tab == 0 ? 9 : 4
        for (i, entry) in items.enumerated() {
            let row = firstRow + i
            let selected = i == item
            let text = entry.label.padding(toLength: 26, withPad: " ", startingAt: 0) + (entry.value.map { "[\($0)]" } ?? "")
            s.put(" " + text.padding(toLength: 51, withPad: " ", startingAt: 0), row: row, column: 1,
                  fg: selected ? blue : white, bg: selected ? grey : blue)
        }
        s.put("Item Specific Help", row: 4, column: 57, fg: white, bg: blue)
        if items.indices.contains(item) {
            var row = 6
            var line = ""
            for word in items[item].help.split(separator: " ") {
                if line.count + word.count + 1 > 21 { s.put(line, row: row, column: 57, fg: grey, bg: blue); row += 1; line = "" }
                line += (line.isEmpty ? "" : " ") + word
            }
            s.put(line, row: row, column: 57, fg: grey, bg: blue)
        }
        s.fill(row: 22, "\u{2500}", fg: grey, bg: blue)
        s.put("Left/Right: Select Screen  Up/Down: Select Item  Enter: Select", row: 23, column: 2, fg: grey, bg: blue)
        s.put("+/-: Change Order  F10: Save and Reset  Esc: Exit Without Saving", row: 24, column: 2, fg: grey, bg: blue)
        if let popup {
            let width = max(popup.options.map(\.count).max() ?? 0, popup.title.count) + 8
            let top = 10 - popup.options.count / 2
            let left = (80 - width) / 2
            s.frame(top: top, left: left, width: width, height: popup.options.count + 2, fg: blue, bg: grey, title: " \(popup.title) ")
            for (i, option) in popup.options.enumerated() {
                let selected = i == popup.selected
                s.put(" " + option.padding(toLength: width - 6, withPad: " ", startingAt: 0) + " ", row: top + 1 + i, column: left + 2,
                      fg: selected ? white : blue, bg: selected ? blue : grey)
            }
        }
        if let confirm = confirmSave {
            s.frame(top: 9, left: 20, width: 40, height: 6, fg: blue, bg: grey, title: " Save & Exit Setup ")
            s.center("Save configuration and reset?", row: 11, fg: blue, bg: grey)
            s.put(" Yes ", row: 13, column: 30, fg: confirm == 0 ? white : blue, bg: confirm == 0 ? blue : grey)
            s.put(" No ", row: 13, column: 44, fg: confirm == 1 ? white : blue, bg: confirm == 1 ? blue : grey)
        }
        return s
    }

    private func composeBootMenu() -> TextScreen {
        var s = TextScreen(geometry: vga)
        let devices = effectiveOrder(saved).map { label($0) } + ["Enter Setup"]
        let top = 6
        s.frame(top: top, left: 18, width: 44, height: devices.count + 4, fg: VGAColor.grey, bg: VGAColor.blue,
                title: " Please select boot device: ")
        for (i, device) in devices.enumerated() {
            let selected = i == menuIndex
            s.put(" " + device.padding(toLength: 38, withPad: " ", startingAt: 0) + " ", row: top + 2 + i, column: 20,
                  fg: selected ? VGAColor.blue : VGAColor.white, bg: selected ? VGAColor.grey : VGAColor.blue)
        }
        s.center("Up and Down to move selection", row: top + devices.count + 5, fg: VGAColor.grey, bg: VGAColor.black)
        s.center("ENTER to select boot device", row: top + devices.count + 6, fg: VGAColor.grey, bg: VGAColor.black)
        s.center("ESC to boot using defaults", row: top + devices.count + 7, fg: VGAColor.grey, bg: VGAColor.black)
        return s
    }

    private func composePXE() -> TextScreen {
        var s = TextScreen(geometry: vga)
        let grey = VGAColor.grey, black = VGAColor.black
        s.put("NanoKVM Simulated PXE Boot Agent v1.0", row: 0, column: 0, fg: grey, bg: black)
        s.put("CLIENT MAC ADDR: 52 54 00 12 34 56", row: 2, column: 0, fg: grey, bg: black)
        s.put("PXE-E18: Server response timeout.", row: 3, column: 0, fg: grey, bg: black)
        s.put("PXE-M0F: Exiting PXE ROM.", row: 4, column: 0, fg: grey, bg: black)
        return s
    }

    private func composeGrub(_ now: ContinuousClock.Instant) -> TextScreen {
        var s = TextScreen(geometry: vga)
        let grey = VGAColor.grey, black = VGAColor.black
        s.center("GNU GRUB  version 2.06", row: 1, fg: grey, bg: black)
        s.frame(top: 3, left: 1, width: 78, height: 12, fg: grey, bg: black)
        for (i, entry) in Self.grubEntries.enumerated() {
            let selected = i == grubIndex
            s.put((selected ? "*" : " ") + entry.padding(toLength: 75, withPad: " ", startingAt: 0), row: 4 + i, column: 2,
                  fg: selected ? black : grey, bg: selected ? grey : black)
        }
        s.put("Use the ^ and v keys to select which entry is highlighted.", row: 16, column: 5, fg: grey, bg: black)
        s.put("Press enter to boot the selected OS, `e' to edit the commands", row: 17, column: 5, fg: grey, bg: black)
        s.put("before booting or `c' for a command-line.", row: 18, column: 5, fg: grey, bg: black)
        if !countdownStopped {
            let elapsed = now - phaseStart
            let left = max(5 - Int(elapsed / seconds(1)), 1)
            s.put("The highlighted entry will be executed automatically in \(left)s.", row: 19, column: 4, fg: grey, bg: black)
        }
        return s
    }

    private func composeConsole(_ now: ContinuousClock.Instant) -> TextScreen {
        var s = TextScreen(geometry: framebuffer)
        for (row, line) in console.lines.enumerated() where row < s.rows {
            s.put(String(line), row: row, column: 0, fg: VGAColor.grey, bg: VGAColor.black)
        }
        if screenKind == .console, cursorLit(now) {
            s.cursor = (console.cursorRow, min(console.cursorColumn, s.columns - 1))
        }
        return s
    }

    private func composeInstaller() -> TextScreen {
        var s = TextScreen(geometry: vga)
        let top = 7, left = 14, width = 52
        s.frame(top: top, left: left, width: width, height: Self.installerEntries.count + 4, fg: VGAColor.white, bg: VGAColor.blue,
                title: " Debian GNU/Linux installer menu (BIOS mode) ")
        for (i, entry) in Self.installerEntries.enumerated() {
            let selected = i == installerIndex
            s.put(" " + entry.padding(toLength: width - 6, withPad: " ", startingAt: 0) + " ", row: top + 2 + i, column: left + 2,
                  fg: selected ? VGAColor.blue : VGAColor.white, bg: selected ? VGAColor.grey : VGAColor.blue)
        }
        s.center("Press ENTER to boot or TAB to edit a menu entry", row: 20, fg: VGAColor.grey, bg: VGAColor.black)
        s.pointer = pointer
        return s
    }

    /// The dialog's box and its buttons (cells): row, first column, label.
    private var dialogButtons: [(row: Int, column: Int, label: String)] {
        switch screenKind {
        case .installerDialog: return [(15, 26, "< Yes >"), (15, 47, "< No >")]
        case .installed: return [(15, 35, "<Continue>")]
        default: return []
        }
    }

    /// The buttons on the screen now, in frame pixels.
    func currentButtons() -> [SimulatorButton] {
        let g = vga
        return dialogButtons.enumerated().map { i, b in
            SimulatorButton(
                label: b.label, x: g.originX + b.column * g.cellWidth, y: g.originY + b.row * g.cellHeight,
                width: b.label.count * g.cellWidth, height: g.cellHeight,
                selected: screenKind == .installed || i == dialogButton)
        }
    }

    private func composeDialog(_ now: ContinuousClock.Instant) -> TextScreen {
        let blue = VGAColor.blue, grey = VGAColor.grey, black = VGAColor.black, white = VGAColor.white
        var s = TextScreen(geometry: vga, background: blue)
        s.fillBox(top: 0, left: 0, width: 80, height: 25, fg: grey, bg: blue)
        s.put("Debian GNU/Linux installer", row: 0, column: 1, fg: white, bg: blue)
        s.frame(top: 7, left: 12, width: 56, height: 11, fg: black, bg: grey, title: screenKind == .installed
                ? " [!] Finish the installation " : " [!!] Partition disks ")
        switch screenKind {
        case .installerDialog:
            s.put("If you continue, the changes listed below will be", row: 9, column: 15, fg: black, bg: grey)
            s.put("written to the disks.", row: 10, column: 15, fg: black, bg: grey)
            s.put("Write the changes to disks?", row: 12, column: 15, fg: black, bg: grey)
        case .installing:
            let elapsed = Double((now - phaseStart) / .milliseconds(1)) / (2000 * scale)
            let percent = min(max(Int(elapsed * 100), 0), 100)
            s.put("Installing the base system...", row: 10, column: 15, fg: black, bg: grey)
            let filled = percent * 40 / 100
            s.put("[" + String(repeating: "#", count: filled) + String(repeating: " ", count: 40 - filled) + "] \(percent)%",
                  row: 12, column: 15, fg: black, bg: grey)
        default:
            s.put("Installation is complete, so it is time to boot into", row: 9, column: 15, fg: black, bg: grey)
            s.put("your new system. Remove the installation media.", row: 10, column: 15, fg: black, bg: grey)
        }
        for (i, button) in dialogButtons.enumerated() {
            let selected = screenKind == .installed || i == dialogButton
            s.put(button.label, row: button.row, column: button.column, fg: selected ? white : black, bg: selected ? VGAColor.red : grey)
        }
        s.put("<Tab> moves; <Space> selects; <Enter> activates buttons", row: 24, column: 1, fg: white, bg: blue)
        s.pointer = pointer
        return s
    }

    // MARK: Inspection

    func state(now: ContinuousClock.Instant) -> SimulatorMachineState {
        var selection: String?
        var tabName: String?
        switch screenKind {
        case .setup:
            tabName = Self.tabs[tab]
            let items = setupItems(now)
            if let confirm = confirmSave {
                selection = confirm == 0 ? "Yes" : "No"
            } else if let popup {
                selection = popup.options[popup.selected]
            } else if items.indices.contains(item) {
                selection = items[item].label
            }
        case .bootMenu:
            let devices = effectiveOrder(saved).map { label($0) } + ["Enter Setup"]
            selection = devices.indices.contains(menuIndex) ? devices[menuIndex] : nil
        case .grub: selection = Self.grubEntries[grubIndex]
        case .installer: selection = Self.installerEntries[installerIndex]
        case .installerDialog: selection = dialogButton == 0 ? "Yes" : "No"
        default: break
        }
        let scene: String
        switch screenKind {
        case .console: scene = consoleMode == .shell ? "shell" : consoleMode.rawValue
        default: scene = screenKind.rawValue
        }
        let cursor: (row: Int, column: Int, visible: Bool)? = screenKind == .console
            ? (console.cursorRow, console.cursorColumn, cursorLit(now)) : nil
        return SimulatorMachineState(
            scene: scene, selection: selection, tab: tabName, bootOrder: effectiveOrder(saved).map { label($0) },
            pendingBootOrder: effectiveOrder(screenKind == .setup ? pending : saved).map { label($0) }, cursor: cursor,
            pointerShown: hasMouse, buttons: currentButtons(), setupWindowOpen: setupWindowOpen(now), loggedIn: loggedIn)
    }
}
