import CLua
import LuaBridge
import NanoKVM

// The sub-objects of a Device: one method per endpoint of the original NanoKVM, grouped as
// in ../shared/lua-api.md. Calls the firmware lacks raise `unsupported` before sending.

enum StorageArea: DeviceAreaKind {
    static let field = "storage"
    static func methods() -> [LuaFunctionSpec] {
        var b = builder()
        b.add("images", returns: "table", "Paths of the disk images (.iso, .img) on the device's `/data`.") { _, a in
            a.device.run { try await $0.storage.images() }
        }
        b.add("mounted", returns: "string or nil", "Path of the mounted image, or nil when none is mounted.") { _, a in
            a.device.run { try await $0.storage.mounted() }
        }
        b.add(
            "mount", args: "path [, {cdrom=bool}]", options: ["cdrom"],
            "Mounts an image as the target's USB disk; `cdrom=true` presents it as a CD-ROM (firmware 2.2.1+, `unsupported` before)."
        ) { call, a in
            let path = try call.string(2)
            let cdrom = try call.options(3)?.boolean("cdrom") ?? false
            return a.device.run { try await $0.storage.mount(path, cdrom: cdrom) }
        }
        b.add("unmount", "Unmounts the image (the target sees its USB devices re-enumerate).") { _, a in
            a.device.run { try await $0.storage.unmount() }
        }
        b.add("delete", args: "path", "Deletes an image from `/data` (firmware 2.3.0+).") { call, a in
            let path = try call.string(2)
            return a.device.run { try await $0.storage.delete(path) }
        }
        b.add("cdrom", returns: "boolean", "Whether images are presented as a CD-ROM (firmware 2.2.1+).") { _, a in
            a.device.run { try await $0.storage.cdromMode() }
        }
        b.add("download_enabled", returns: "boolean", "Whether the device can download images (its `/data` is writable).") { _, a in
            a.device.run { try await $0.downloads.enabled() }
        }
        b.add(
            "download", args: "url [, sha256]", returns: "table",
            "Starts downloading an image from `url` into `/data` on the device; returns `{status=, file=, percentage=}`. Follow it with `download_status()`."
        ) { call, a in
            let url = try call.string(2)
            let sha = try call.optionalString(3)
            return a.device.run { try await $0.downloads.downloadImage(from: url, sha256: sha) }
        }
        b.add("download_status", returns: "table", "Progress of the image download: `{status=, file=, percentage=}`.") { _, a in
            a.device.run { try await $0.downloads.status() }
        }
        b.add("cancel_download", "Cancels the image download (firmware 2.5.0+).") { _, a in
            a.device.run { try await $0.downloads.cancel() }
        }
        b.add(
            "upload_iso", args: "name, data [, sha256]", returns: "table",
            "Uploads an ISO image (`data`: the file's bytes as a string, `name` ending in .iso) to `/data` (firmware 2.3.1+)."
        ) { call, a in
            let name = try call.string(2)
            let data = try call.bytes(3)
            let sha = try call.optionalString(4)
            return a.device.run { try await $0.downloads.uploadISO(named: name, contents: data, sha256: sha) }
        }
        return b.specs
    }
}

enum VirtualArea: DeviceAreaKind {
    static let field = "virtual"

    static func device(_ call: LuaCall, _ index: Int32) throws(LuaUsageError) -> VirtualDevice {
        let name = try call.string(index)
        guard let device = VirtualDevice(rawValue: name) else {
            throw call.argumentError(index, "unknown virtual device '\(name)' (network, disk)")
        }
        return device
    }

    static func methods() -> [LuaFunctionSpec] {
        var b = builder()
        b.add("status", returns: "table", "Which virtual USB devices are on: `{network=bool, disk=bool}`.") { _, a in
            a.device.run { try await $0.virtualDevices.status() }
        }
        b.add(
            "set", args: "name, on", returns: "boolean",
            "Turns the virtual `\"network\"` adapter or `\"disk\"` on or off; reads the state first and toggles only when needed. Returns whether it changed anything."
        ) { call, a in
            let device = try device(call, 2)
            let on = try call.boolean(3)
            return a.device.run { try await $0.virtualDevices.set(device, on: on) }
        }
        b.add("toggle", args: "name", returns: "boolean", "Toggles a virtual device (what the device's endpoint does); returns the new state.") { call, a in
            let device = try device(call, 2)
            return a.device.run { try await $0.virtualDevices.toggle(device) }
        }
        return b.specs
    }
}

enum HIDArea: DeviceAreaKind {
    static let field = "hid"
    static func methods() -> [LuaFunctionSpec] {
        var b = builder()
        b.add("reset", "Resets the USB HID devices (the target sees them re-enumerate; takes about a second).") { _, a in
            a.device.run { try await $0.hid.reset() }
        }
        b.add("mode", returns: "string", "`\"normal\"` or `\"hid-only\"` (keyboard and mouse only, BIOS-friendly).") { _, a in
            a.device.run { try await $0.hid.mode().rawValue }
        }
        b.add("set_mode", args: "m", "Sets `\"normal\"` or `\"hid-only\"`; a change reboots the device.") { call, a in
            let name = try call.string(2)
            guard let mode = HIDMode(rawValue: name) else { throw call.argumentError(2, "mode must be \"normal\" or \"hid-only\"") }
            return a.device.run { try await $0.hid.setMode(mode) }
        }
        b.add("leds", returns: "table", "Same as `dev:keyboard_leds()`.") { _, a in
            a.device.run { try await $0.hid.keyboardLEDs() }
        }
        b.add("shortcuts", returns: "table", "Keyboard shortcuts stored on the device: `{ {id=, keys={ {code=, label=} } } }` (2.3.2+).") { _, a in
            a.device.run { try await $0.hid.shortcuts() }
        }
        b.add("add_shortcut", args: "keys", "Stores a shortcut: `keys` is a list of KeyboardEvent codes (`{\"ControlLeft\", \"AltLeft\", \"Delete\"}`) or `{code=, label=}` tables.") { call, a in
            let list = try call.requireTable(2)
            var keys: [ShortcutKey] = []
            for i in 0..<list.length {
                let type = list.pushElement(i + 1)
                defer { call.stack.pop() }
                switch type {
                case .string:
                    let code = call.stack.string(at: -1) ?? ""
                    keys.append(ShortcutKey(code: code, label: code))
                case .table:
                    let item = LuaTableArgument(call: call, index: lua_gettop(call.L))
                    guard let code = try item.string("code") else { throw call.argumentError(2, "key \(i + 1) has no 'code'") }
                    keys.append(ShortcutKey(code: code, label: try item.string("label") ?? code))
                default:
                    throw call.argumentError(2, "key \(i + 1) must be a string or a table")
                }
            }
            guard !keys.isEmpty else { throw call.argumentError(2, "a shortcut needs at least one key") }
            let chosen = keys
            return a.device.run { try await $0.hid.addShortcut(keys: chosen) }
        }
        b.add("delete_shortcut", args: "id", "Deletes a stored shortcut by its id.") { call, a in
            let id = try call.string(2)
            return a.device.run { try await $0.hid.deleteShortcut(id: id) }
        }
        b.add("leader_key", returns: "string or nil", "The web UI's leader key (a KeyboardEvent code) or nil (2.3.4+).") { _, a in
            a.device.run { try await $0.hid.leaderKey() }
        }
        b.add("set_leader_key", args: "[code]", "Sets the web UI's leader key; nil clears it.") { call, a in
            let key = try call.optionalString(2)
            return a.device.run { try await $0.hid.setLeaderKey(key) }
        }
        return b.specs
    }
}

enum StreamArea: DeviceAreaKind {
    static let field = "stream"

    /// `dev:stream_settings(t)` and `dev.stream:settings(t)`.
    static func applySettings(_ call: LuaCall, _ device: DeviceHandle, tableIndex: Int32) throws -> LuaReturn {
        let table = try call.requireTable(tableIndex)
        var settings: [ScreenSetting] = []
        let known = ["resolution", "fps", "quality", "encoding", "gop"]
        lua_pushnil(call.L)
        while lua_next(call.L, table.index) != 0 {
            let key = call.stack.string(at: -2) ?? "?"
            call.stack.pop()
            guard known.contains(key) else {
                call.stack.pop()
                throw call.argumentError(tableIndex, "unknown setting '\(key)' (\(known.joined(separator: ", ")))")
            }
        }
        if let value = try table.integer("resolution") { settings.append(.resolution(Int(value))) }
        if let value = try table.integer("fps") { settings.append(.fps(Int(value))) }
        if let value = try table.integer("quality") { settings.append(.quality(Int(value))) }
        if let value = try table.integer("gop") { settings.append(.gop(Int(value))) }
        if let value = try table.string("encoding") {
            guard let encoding = VideoEncoding(rawValue: value) else {
                throw call.argumentError(tableIndex, "encoding must be \"mjpeg\" or \"h264\"")
            }
            settings.append(.encoding(encoding))
        }
        let chosen = settings
        return device.run { client in
            for setting in chosen { try await client.screen.set(setting) }
        }
    }

    static func methods() -> [LuaFunctionSpec] {
        var b = builder()
        b.add(
            "detect", returns: "boolean",
            "Whether MJPEG frame detection is on (no frames while the screen is still). Firmware 2.2.3+ cannot report it: the value this client set, else `unsupported`."
        ) { _, a in a.device.run { try await $0.stream.frameDetection() } }
        b.add("set_detect", args: "on", "Switches MJPEG frame detection on or off (state-aware on firmware that only toggles).") { call, a in
            let on = try call.boolean(2)
            return a.device.run { try await $0.stream.setFrameDetection(on) }
        }
        b.add("pause_detect", args: "[seconds]", "Turns frame detection off for `seconds` (default 10), then on.") { call, a in
            let seconds = Int(try call.optionalInteger(2) ?? 10)
            return a.device.run { try await $0.stream.pauseFrameDetection(seconds: seconds) }
        }
        b.add(
            "settings", args: "t",
            "Same as `dev:stream_settings(t)`, also accepting `encoding` (`\"mjpeg\"`/`\"h264\"`) and `gop` (H.264 key-frame interval)."
        ) { call, a in try applySettings(call, a.device, tableIndex: 2) }
        return b.specs
    }
}

enum NetworkArea: DeviceAreaKind {
    static let field = "network"
    static func methods() -> [LuaFunctionSpec] {
        var b = builder()
        b.add("wake", args: "mac", "Sends a Wake-on-LAN magic packet from the device to `mac` (any common notation).") { call, a in
            let mac = try call.string(2)
            return a.device.run { try await $0.network.wake(mac) }
        }
        b.add("wake_targets", returns: "table", "MAC addresses woken before: `{ {mac=, name=}, ... }`.") { _, a in
            a.device.run { try await $0.network.wakeTargets() }
        }
        b.add("forget_wake_target", args: "mac", "Removes a MAC address from the Wake-on-LAN history.") { call, a in
            let mac = try call.string(2)
            return a.device.run { try await $0.network.deleteWakeTarget(mac) }
        }
        b.add("name_wake_target", args: "mac, name", "Names a MAC address of the Wake-on-LAN history.") { call, a in
            let mac = try call.string(2)
            let name = try call.string(3)
            return a.device.run { try await $0.network.nameWakeTarget(mac, name: name) }
        }
        b.add("wifi", returns: "table", "Wi-Fi state: `{supported=, ap_mode=, connected=, ssid=}`.") { _, a in
            a.device.run { try await $0.network.wifi() }
        }
        b.add("connect_wifi", args: "ssid, password", "Joins a Wi-Fi network (takes 15-20 s).") { call, a in
            let ssid = try call.string(2)
            let password = try call.string(3)
            Secrets.register(password)
            return a.device.run { try await $0.network.connectWiFi(ssid: ssid, password: password) }
        }
        b.add("disconnect_wifi", "Leaves the Wi-Fi network and forgets it.") { _, a in
            a.device.run { try await $0.network.disconnectWiFi() }
        }
        b.add(
            "setup_wifi", args: "ssid, password [, ap_key]",
            "First-time setup while the device is its own access point: joins `ssid` (`ap_key`: the AP password the device shows, firmware 2.3.6+)."
        ) { call, a in
            let ssid = try call.string(2)
            let password = try call.string(3)
            let key = try call.optionalString(4)
            Secrets.register(password)
            return a.device.run {
                try await $0.network.configureWiFiInAccessPointMode(ssid: ssid, password: password, accessPointKey: key)
            }
        }
        b.add("dns", returns: "table", "DNS settings: `{mode=\"dhcp\"|\"manual\", servers=, effective=, dhcp=, info=}` (2.4.1+).") { _, a in
            a.device.run { try await $0.network.dns() }
        }
        b.add("set_dns", args: "mode [, servers]", "Sets DNS: `\"dhcp\"`, or `\"manual\"` with a list of server addresses.") { call, a in
            let modeName = try call.string(2)
            guard let mode = DNSMode(rawValue: modeName) else { throw call.argumentError(2, "mode must be \"dhcp\" or \"manual\"") }
            var servers: [String] = []
            if let list = try call.optionalTable(3) {
                for i in 0..<list.length {
                    guard list.pushElement(i + 1) == .string, let server = call.stack.string(at: -1) else {
                        call.stack.pop()
                        throw call.argumentError(3, "servers must be strings")
                    }
                    call.stack.pop()
                    servers.append(server)
                }
            }
            let chosen = servers
            return a.device.run { try await $0.network.setDNS(mode, servers: chosen) }
        }
        return b.specs
    }
}

enum SystemArea: DeviceAreaKind {
    static let field = "system"
    static func methods() -> [LuaFunctionSpec] {
        var b = builder()
        b.add("hostname", returns: "string", "The device's host name.") { _, a in a.device.run { try await $0.system.hostname() } }
        b.add("set_hostname", args: "name", "Sets the host name (also the mDNS name).") { call, a in
            let name = try call.string(2)
            return a.device.run { try await $0.system.setHostname(name) }
        }
        b.add("web_title", returns: "string", "The web UI's title (\"NanoKVM\" unless changed).") { _, a in
            a.device.run { client -> String in
                do { return try await client.system.webTitle() } catch let error as NanoKVMError where error.kind == .api && error.code == -1 {
                    return "NanoKVM"  // the device answers -1 while no custom title is set
                }
            }
        }
        b.add("set_web_title", args: "title", "Sets the web UI's title; \"\" restores the default.") { call, a in
            let title = try call.string(2)
            return a.device.run { try await $0.system.setWebTitle(title) }
        }
        for (name, what) in [("ssh", "the SSH server"), ("mdns", "mDNS")] {
            b.add(name, returns: "boolean", "Whether \(what) runs.") { _, a in
                a.device.run { client in name == "ssh" ? try await client.system.sshEnabled() : try await client.system.mdnsEnabled() }
            }
            b.add("set_" + name, args: "on", "Enables or disables \(what).") { call, a in
                let on = try call.boolean(2)
                return a.device.run { client in
                    if name == "ssh" { try await client.system.setSSH(enabled: on) } else { try await client.system.setMDNS(enabled: on) }
                }
            }
        }
        b.add("oled", returns: "table", "The OLED display: `{present=bool, sleep=seconds}` (0 = never sleeps).") { _, a in
            a.device.run { try await $0.system.oled() }
        }
        b.add("set_oled_sleep", args: "seconds", "Seconds before the OLED sleeps (0 = never).") { call, a in
            let seconds = Int(try call.integer(2))
            return a.device.run { try await $0.system.setOLEDSleep(seconds: seconds) }
        }
        b.add("swap", returns: "integer", "Swap size in MB (0 = none).") { _, a in a.device.run { try await $0.system.swapSize() } }
        b.add("set_swap", args: "megabytes", "Sets the swap size (0, 64, 128, 256, 512 MB; takes a few seconds).") { call, a in
            let size = Int(try call.integer(2))
            return a.device.run { try await $0.system.setSwapSize(megabytes: size) }
        }
        b.add("memory_limit", returns: "table", "The server's memory limit: `{enabled=bool, limit=MB}`.") { _, a in
            a.device.run { try await $0.system.memoryLimit() }
        }
        b.add("set_memory_limit", args: "enabled, megabytes", "Sets the server's memory limit.") { call, a in
            let enabled = try call.boolean(2)
            let size = Int(try call.integer(3))
            return a.device.run { try await $0.system.setMemoryLimit(enabled: enabled, megabytes: size) }
        }
        b.add("hdmi", returns: "table", "HDMI capture: `{enabled=bool, signal=bool (newest firmware), idle_timeout=minutes}`.") { _, a in
            a.device.run { try await $0.system.hdmi() }
        }
        b.add("set_hdmi", args: "on", "Enables or disables HDMI capture.") { call, a in
            let on = try call.boolean(2)
            return a.device.run { try await $0.system.setHDMI(enabled: on) }
        }
        b.add("reset_hdmi", "Restarts HDMI capture (takes about a second).") { _, a in a.device.run { try await $0.system.resetHDMI() } }
        b.add("set_hdmi_idle_timeout", args: "minutes", "Stops capture after this many minutes without a viewer (0 = never; 2.5.0+).") { call, a in
            let minutes = Int(try call.integer(2))
            return a.device.run { try await $0.system.setHDMIIdleTimeout(minutes: minutes) }
        }
        b.add("mouse_jiggler", returns: "table", "The mouse jiggler: `{enabled=bool, mode=\"relative\"|\"absolute\"}`.") { _, a in
            a.device.run { try await $0.system.mouseJiggler() }
        }
        b.add("set_mouse_jiggler", args: "enabled [, mode]", "Switches the mouse jiggler (`mode`: `\"relative\"` default, or `\"absolute\"`).") { call, a in
            let enabled = try call.boolean(2)
            let modeName = try call.optionalString(3) ?? "relative"
            guard let mode = MouseJigglerMode(rawValue: modeName) else {
                throw call.argumentError(3, "mode must be \"relative\" or \"absolute\"")
            }
            return a.device.run { try await $0.system.setMouseJiggler(enabled: enabled, mode: mode) }
        }
        b.add("set_tls", args: "on", "Switches HTTPS on or off; the device restarts its server (reconnect afterwards).") { call, a in
            let on = try call.boolean(2)
            return a.device.run { try await $0.system.setTLS(enabled: on) }
        }
        b.add("reboot", "Reboots the device (the connection drops).") { _, a in a.device.run { try await $0.system.reboot() } }
        b.add("autostart", returns: "table", "Names of the autostart scripts (2.3.1+).") { _, a in
            a.device.run { try await $0.system.autostartScripts() }
        }
        b.add("autostart_script", args: "name", returns: "string", "The content of an autostart script.") { call, a in
            let name = try call.string(2)
            return a.device.run { try await $0.system.autostartScript(named: name) }
        }
        b.add("save_autostart_script", args: "name, content", "Creates or replaces an autostart script.") { call, a in
            let name = try call.string(2)
            let content = try call.string(3)
            return a.device.run { try await $0.system.saveAutostartScript(named: name, content: content) }
        }
        b.add("delete_autostart_script", args: "name", "Deletes an autostart script.") { call, a in
            let name = try call.string(2)
            return a.device.run { try await $0.system.deleteAutostartScript(named: name) }
        }
        b.add("versions", returns: "table", "`{current=, latest=}` application versions (asks the update server: fails offline).") { _, a in
            a.device.run { try await $0.application.versions() }
        }
        b.add("update", "Updates the application from the update server (takes minutes; the server restarts).") { _, a in
            a.device.run { try await $0.application.update() }
        }
        b.add("preview", returns: "boolean", "Whether the preview (beta) update channel is on.") { _, a in
            a.device.run { try await $0.application.previewChannel() }
        }
        b.add("set_preview", args: "on", "Switches the preview update channel.") { call, a in
            let on = try call.boolean(2)
            return a.device.run { try await $0.application.setPreviewChannel(enabled: on) }
        }
        b.add("update_server", returns: "table", "The custom update server: `{enabled=bool, url=}` (newest firmware).") { _, a in
            a.device.run { try await $0.application.updateServer() }
        }
        b.add("set_update_server", args: "enabled [, url]", returns: "table", "Sets the custom update server.") { call, a in
            let enabled = try call.boolean(2)
            let url = try call.optionalString(3) ?? ""
            return a.device.run { try await $0.application.setUpdateServer(enabled: enabled, url: url) }
        }
        return b.specs
    }
}

enum ScriptsArea: DeviceAreaKind {
    static let field = "scripts"
    static func methods() -> [LuaFunctionSpec] {
        var b = builder()
        b.add("list", returns: "table", "Names of the scripts (.sh, .py) stored on the device.") { _, a in
            a.device.run { try await $0.scripts.list() }
        }
        b.add("upload", args: "name, content", "Stores a script (`name` ending in .sh or .py).") { call, a in
            let name = try call.string(2)
            let content = try call.bytes(3)
            return a.device.run { client in _ = try await client.scripts.upload(name: name, contents: content) }
        }
        b.add(
            "run", args: "name [, {background=bool}]", returns: "string", options: ["background"],
            "Runs a stored script on the device and returns its output (`background=true`: returns at once, with \"\")."
        ) { call, a in
            let name = try call.string(2)
            let background = try call.options(3)?.boolean("background") ?? false
            return a.device.run { try await $0.scripts.run(name: name, background: background) }
        }
        b.add("delete", args: "name", "Deletes a stored script.") { call, a in
            let name = try call.string(2)
            return a.device.run { try await $0.scripts.delete(name: name) }
        }
        return b.specs
    }
}

enum TailscaleArea: DeviceAreaKind {
    static let field = "tailscale"
    static func methods() -> [LuaFunctionSpec] {
        var b = builder()
        b.add("status", returns: "table", "`{state=, name=, ip=, account=}`; state is notInstall, notRunning, notLogin, stopped or running.") { _, a in
            a.device.run { try await $0.tailscale.status() }
        }
        let actions: [(String, String, @Sendable (TailscaleAPI) async throws -> Void)] = [
            ("install", "Installs Tailscale on the device (downloads it; slow).", { try await $0.install() }),
            ("uninstall", "Removes Tailscale.", { try await $0.uninstall() }),
            ("start", "Starts the Tailscale service.", { try await $0.start() }),
            ("stop", "Stops the Tailscale service.", { try await $0.stop() }),
            ("restart", "Restarts the Tailscale service.", { try await $0.restart() }),
            ("up", "Connects to the tailnet.", { try await $0.up() }),
            ("down", "Disconnects from the tailnet.", { try await $0.down() }),
            ("logout", "Logs the device out of Tailscale.", { try await $0.logout() }),
        ]
        for (name, documentation, action) in actions {
            b.add(name, documentation) { _, a in a.device.run { try await action($0.tailscale) } }
        }
        b.add("login", returns: "string or nil", "Starts a Tailscale login; returns the URL to open, or nil when already logged in.") { _, a in
            a.device.run { try await $0.tailscale.login() }
        }
        return b.specs
    }
}

enum AuthArea: DeviceAreaKind {
    static let field = "auth"
    static func role(_ call: LuaCall, _ index: Int32) throws(LuaUsageError) -> UserRole? {
        guard let name = try call.optionalString(index) else { return nil }
        guard let role = UserRole(rawValue: name) else { throw call.argumentError(index, "role must be \"admin\" or \"user\"") }
        return role
    }

    static func methods() -> [LuaFunctionSpec] {
        var b = builder()
        b.add("account", returns: "table", "The logged-in account: `{username=, role=}` (role on the newest firmware).") { _, a in
            a.device.run { try await $0.auth.account() }
        }
        b.add("password_updated", returns: "boolean", "Whether the default password was changed.") { _, a in
            a.device.run { try await $0.auth.isPasswordUpdated() }
        }
        b.add("change_password", args: "current, new", "Changes the password of the logged-in account (the device ends its sessions).") { call, a in
            let current = try call.optionalString(2)
            let new = try call.string(3)
            if let current { Secrets.register(current) }
            Secrets.register(new)
            return a.device.run { try await $0.auth.changePassword(current: current, new: new) }
        }
        b.add("users", returns: "table", "Accounts (newest firmware, admin): `{ {username=, role=, enabled=, system=} }`.") { _, a in
            a.device.run { try await $0.users.list() }
        }
        b.add("create_user", args: "name, password [, role]", "Creates an account (`role`: `\"user\"` default, or `\"admin\"`).") { call, a in
            let name = try call.string(2)
            let password = try call.string(3)
            let role = try role(call, 4) ?? .user
            Secrets.register(password)
            return a.device.run { try await $0.users.create(username: name, password: password, role: role) }
        }
        b.add("update_user", args: "name, {role=, enabled=}", options: ["role", "enabled"], "Changes an account's role or enables/disables it.") { call, a in
            let name = try call.string(2)
            let options = try call.requireOptions(3)
            var role: UserRole?
            if let text = try options.string("role") {
                guard let known = UserRole(rawValue: text) else { throw call.argumentError(3, "role must be \"admin\" or \"user\"") }
                role = known
            }
            let enabled = try options.boolean("enabled")
            let chosen = role
            return a.device.run { try await $0.users.update(username: name, role: chosen, enabled: enabled) }
        }
        b.add("delete_user", args: "name", "Deletes an account.") { call, a in
            let name = try call.string(2)
            return a.device.run { try await $0.users.delete(username: name) }
        }
        b.add("reset_password", args: "name, password", "Sets another account's password (admin).") { call, a in
            let name = try call.string(2)
            let password = try call.string(3)
            Secrets.register(password)
            return a.device.run { try await $0.users.resetPassword(username: name, password: password) }
        }
        return b.specs
    }
}
