// The route table of §7.2 (plus the 2.0.x paths of §7.1), filtered by the application version
// the simulator imitates: a route outside its version range answers 404 like on that firmware.

extension Device {
    static func buildRoutes(_ p: Profile, generation: SimulatorGeneration) -> [Route] {
        var routes: [Route] = []
        func add(
            _ method: String, _ path: String, _ auth: RouteAuth, since: String = "2.0.0", until: String? = nil,
            webSocket: Bool = false, _ handler: @escaping Route.Handler
        ) {
            guard p.atLeast(since) else { return }
            if let until, p.version > ApplicationVersion(until) { return }
            routes.append(Route(method, path, auth, webSocket: webSocket, handler))
        }
        let old = "2.0.99"

        // Auth.
        add("POST", "/api/auth/login", .none) { d, c in await d.login(c) }
        add("POST", "/api/auth/logout", .session, since: "2.1.6") { d, c in await d.logout(c) }
        add("GET", "/api/auth/account", .session, since: "2.1.4") { d, c in await d.account(c) }
        add("GET", "/api/auth/password", .session, since: "2.1.1") { d, c in await d.passwordState(c) }
        add("POST", "/api/auth/password", .session) { d, c in await d.changePassword(c) }
        add("GET", "/api/auth/users", .admin, since: "2.5.1") { d, c in await d.listUsers(c) }
        add("POST", "/api/auth/users", .admin, since: "2.5.1") { d, c in await d.createUser(c) }
        add("PUT", "/api/auth/users/:username", .admin, since: "2.5.1") { d, c in await d.updateUser(c) }
        add("DELETE", "/api/auth/users/:username", .admin, since: "2.5.1") { d, c in await d.deleteUser(c) }
        add("POST", "/api/auth/users/:username/password", .admin, since: "2.5.1") { d, c in await d.resetUserPassword(c) }

        // Application / firmware.
        add("GET", "/api/firmware/version", .session, until: old) { d, c in await d.applicationVersion(c) }
        add("POST", "/api/firmware/update", .session, until: old) { d, c in await d.applicationUpdate(c) }
        add("GET", "/api/firmware/lib", .session, until: old) { d, _ in d.ok(["exist": true]) }
        add("POST", "/api/firmware/lib/update", .session, until: old) { d, _ in d.fail(-1, "update lib failed") }
        add("GET", "/api/application/version", .admin, since: "2.1.0") { d, c in await d.applicationVersion(c) }
        add("POST", "/api/application/update", .admin, since: "2.1.0") { d, c in await d.applicationUpdate(c) }
        add("POST", "/api/application/update/offline", .admin, since: "2.3.1") { d, _ in d.fail(-1, "update failed: invalid package") }
        add("GET", "/api/application/preview", .admin, since: "2.2.5") { d, c in await d.preview(c) }
        add("POST", "/api/application/preview", .admin, since: "2.2.5") { d, c in await d.setPreview(c) }
        add("GET", "/api/application/update-server", .admin, since: "2.5.1") { d, c in await d.updateServer(c) }
        add("POST", "/api/application/update-server", .admin, since: "2.5.1") { d, c in await d.setUpdateServer(c) }
        add("GET", "/api/application/lib", .session, since: "2.1.0", until: "2.1.0") { d, _ in d.ok(["exist": true]) }
        add("POST", "/api/application/lib", .session, since: "2.1.0", until: "2.1.0") { d, _ in d.ok() }

        // Downloads.
        add("POST", "/api/download/image", .admin, since: "2.1.6") { d, c in await d.downloadImage(c) }
        add("GET", "/api/download/image/status", .admin, since: "2.1.6") { d, c in await d.downloadStatus(c) }
        add("GET", "/api/download/image/enabled", .admin, since: "2.1.6") { d, c in await d.downloadEnabled(c) }
        add("POST", "/api/download/image/cancel", .admin, since: "2.5.0") { d, c in await d.cancelDownload(c) }
        add("POST", "/api/download/file", .admin, since: "2.3.1") { d, c in await d.uploadISO(c) }

        // VM.
        add("GET", "/api/vm/info", .session) { d, c in await d.info(c) }
        add("GET", "/api/vm/hardware", .session, since: "2.1.5") { d, c in await d.hardware(c) }
        add("POST", "/api/vm/gpio", .session) { d, c in await d.pressButton(c) }
        add("GET", "/api/vm/gpio", .session, since: "2.1.0") { d, c in await d.leds(c) }
        add("GET", "/api/vm/gpio/led", .session, until: old) { d, c in await d.leds(c) }
        add("POST", "/api/vm/screen", .session) { d, c in await d.setScreen(c) }
        add("GET", "/api/vm/terminal", .admin, webSocket: true) { d, c in await d.webSocketFallback(c) }
        add("GET", "/api/vm/script", .admin) { d, c in await d.scripts(c) }
        add("POST", "/api/vm/script/upload", .admin) { d, c in await d.uploadScript(c) }
        add("POST", "/api/vm/script/run", .admin) { d, c in await d.runScript(c) }
        add("DELETE", "/api/vm/script", .admin) { d, c in await d.deleteScript(c) }
        add("GET", "/api/vm/device/virtual", .admin) { d, c in await d.virtualDevices(c) }
        add("POST", "/api/vm/device/virtual", .admin) { d, c in await d.toggleVirtualDevice(c) }
        add("GET", "/api/vm/memory/limit", .admin, since: "2.1.4") { d, c in await d.memoryLimit(c) }
        add("POST", "/api/vm/memory/limit", .admin, since: "2.1.4") { d, c in await d.setMemoryLimit(c) }
        add("GET", "/api/vm/oled", .admin, since: "2.1.4") { d, c in await d.oled(c) }
        add("POST", "/api/vm/oled", .admin, since: "2.1.4") { d, c in await d.setOLED(c) }
        add("GET", "/api/vm/hdmi", .session, since: "2.2.8") { d, c in await d.hdmiState(c) }
        add("POST", "/api/vm/hdmi/reset", .session, since: "2.1.5") { d, c in await d.hdmiReset(c) }
        add("POST", "/api/vm/hdmi/enable", .admin, since: "2.2.8") { d, _ in d.setHDMI(true); return d.ok() }
        add("POST", "/api/vm/hdmi/disable", .admin, since: "2.2.8") { d, _ in d.setHDMI(false); return d.ok() }
        add("POST", "/api/vm/hdmi/timeout", .admin, since: "2.5.0") { d, c in await d.hdmiTimeout(c) }
        add("GET", "/api/vm/ssh", .admin, since: "2.1.6") { d, _ in d.ok(["enabled": .bool(d.state.withLock { $0.sshEnabled })]) }
        add("POST", "/api/vm/ssh/enable", .admin, since: "2.1.6") { d, _ in d.toggleSetting(\.sshEnabled, true) }
        add("POST", "/api/vm/ssh/disable", .admin, since: "2.1.6") { d, _ in d.toggleSetting(\.sshEnabled, false) }
        add("GET", "/api/vm/swap", .admin, since: "2.2.6") { d, c in await d.swap(c) }
        add("POST", "/api/vm/swap", .admin, since: "2.2.6") { d, c in await d.setSwap(c) }
        add("GET", "/api/vm/mouse-jiggler", .admin, since: "2.2.6") { d, c in await d.jiggler(c) }
        add("POST", "/api/vm/mouse-jiggler/", .admin, since: "2.2.6") { d, c in await d.setJiggler(c) }
        add("GET", "/api/vm/hostname", .session, since: "2.2.6") { d, c in await d.hostname(c) }
        add("POST", "/api/vm/hostname", .admin, since: "2.2.6") { d, c in await d.setHostname(c) }
        add("GET", "/api/vm/web-title", .session, since: "2.2.6") { d, c in await d.webTitle(c) }
        add("POST", "/api/vm/web-title", .admin, since: "2.2.6") { d, c in await d.setWebTitle(c) }
        add("GET", "/api/vm/mdns", .admin, since: "2.2.2") { d, _ in d.ok(["enabled": .bool(d.state.withLock { $0.mdnsEnabled })]) }
        add("POST", "/api/vm/mdns/enable", .admin, since: "2.2.2") { d, _ in d.toggleSetting(\.mdnsEnabled, true) }
        add("POST", "/api/vm/mdns/disable", .admin, since: "2.2.2") { d, _ in d.toggleSetting(\.mdnsEnabled, false) }
        add("POST", "/api/vm/tls", .admin, since: "2.2.7") { d, c in await d.setTLS(c) }
        add("GET", "/api/vm/autostart", .admin, since: "2.3.1") { d, c in await d.autostartList(c) }
        add("GET", "/api/vm/autostart/:name", .admin, since: "2.3.1") { d, c in await d.autostartContent(c) }
        add("POST", "/api/vm/autostart/:name", .admin, since: "2.3.1") { d, c in await d.uploadAutostart(c) }
        add("DELETE", "/api/vm/autostart/:name", .admin, since: "2.3.1") { d, c in await d.deleteAutostart(c) }
        add("POST", "/api/vm/system/reboot", .admin, since: "2.2.2") { d, c in await d.reboot(c) }

        // HID.
        add("POST", "/api/hid/paste", .session) { d, c in await d.paste(c) }
        add("POST", "/api/hid/reset", .admin) { d, c in await d.resetHID(c) }
        add("GET", "/api/hid/mode", .session, since: "2.2.5") { d, c in await d.hidMode(c) }
        add("POST", "/api/hid/mode", .admin, since: "2.2.5") { d, c in await d.setHIDMode(c) }
        add("GET", "/api/hid/leds", .session, since: "2.5.0") { d, c in await d.keyboardLEDs(c) }
        add("GET", "/api/hid/shortcuts", .session, since: "2.3.2") { d, c in await d.shortcuts(c) }
        add("POST", "/api/hid/shortcut", .admin, since: "2.3.2") { d, c in await d.addShortcut(c) }
        add("DELETE", "/api/hid/shortcut", .admin, since: "2.3.2") { d, c in await d.deleteShortcut(c) }
        add("GET", "/api/hid/shortcut/leader-key", .session, since: "2.3.4") { d, c in await d.leaderKey(c) }
        add("POST", "/api/hid/shortcut/leader-key", .admin, since: "2.3.4") { d, c in await d.setLeaderKey(c) }

        // Storage.
        add("GET", "/api/storage/images", .session, until: old) { d, c in await d.images(c) }
        add("GET", "/api/storage/images/mounted", .session, until: old) { d, c in await d.mountedImage(c) }
        add("GET", "/api/storage/image", .admin, since: "2.1.0") { d, c in await d.images(c) }
        add("GET", "/api/storage/image/mounted", .admin, since: "2.1.0") { d, c in await d.mountedImage(c) }
        add("POST", "/api/storage/image/mount", .admin) { d, c in await d.mountImage(c) }
        add("GET", "/api/storage/cdrom", .admin, since: "2.2.1") { d, c in await d.cdrom(c) }
        add("POST", "/api/storage/image/delete", .admin, since: "2.3.0") { d, c in await d.deleteImage(c) }

        // Streams.
        add("GET", "/api/stream/mjpeg", .session) { d, c in await d.mjpeg(c) }
        add("GET", "/api/stream/mjpeg/detect", .session, until: "2.2.2") { d, c in await d.frameDetectState(c) }
        add("POST", "/api/stream/mjpeg/detect", .session) { d, c in await d.setFrameDetect(c) }
        add("POST", "/api/stream/mjpeg/detect/stop", .session) { d, c in await d.stopFrameDetect(c) }
        add("GET", "/api/stream/h264", .session, since: "2.1.1", webSocket: true) { d, c in await d.webSocketFallback(c) }
        add("GET", "/api/stream/h264/direct", .session, since: "2.2.7", webSocket: true) { d, c in await d.webSocketFallback(c) }

        // Network.
        add("POST", "/api/network/wol", .session) { d, c in await d.wakeOnLAN(c) }
        add("GET", "/api/network/wol/mac", .session) { d, c in await d.wolMACs(c) }
        add("DELETE", "/api/network/wol/mac", .admin) { d, c in await d.deleteWolMAC(c) }
        add("POST", "/api/network/wol/mac/name", .admin, since: "2.2.6") { d, c in await d.nameWolMAC(c) }
        add("POST", "/api/network/wifi", .none, since: "2.1.4") { d, c in await d.wifiSetup(c) }
        add("POST", "/api/network/wifi/verify", .none, since: "2.3.6") { d, c in await d.wifiVerify(c) }
        add("GET", "/api/network/wifi", .admin, since: "2.1.3") { d, c in await d.wifi(c) }
        add("POST", "/api/network/wifi/connect", .admin, since: "2.3.1") { d, c in await d.wifiConnect(c) }
        add("POST", "/api/network/wifi/disconnect", .admin, since: "2.3.1") { d, c in await d.wifiDisconnect(c) }
        add("GET", "/api/network/dns", .admin, since: "2.4.1") { d, c in await d.dns(c) }
        add("POST", "/api/network/dns", .admin, since: "2.4.1") { d, c in await d.setDNS(c) }

        // Tailscale: /api/network/tailscale until 2.1.5, /api/extensions/tailscale from 2.1.6.
        if p.oldTailscale {
            let base = "/api/network/tailscale"
            add("GET", base + "/status", .session) { d, c in await d.tailscaleStatus(c) }
            add("POST", base + "/status", .session, until: "2.1.3") { d, c in await d.tailscaleCommand(c) }
            for action in ["install", "login", "logout"] {
                add("POST", base + "/" + action, .session) { d, c in await d.tailscaleAction(action, c) }
            }
            for action in ["up", "down", "uninstall"] {
                add("POST", base + "/" + action, .session, since: "2.1.4") { d, c in await d.tailscaleAction(action, c) }
            }
            for action in ["restart", "stop"] {
                add("POST", base + "/" + action, .session, since: "2.1.5") { d, c in await d.tailscaleAction(action, c) }
            }
        } else {
            let base = "/api/extensions/tailscale"
            add("GET", base + "/status", .admin) { d, c in await d.tailscaleStatus(c) }
            for action in ["install", "uninstall", "up", "down", "login", "logout", "start", "stop", "restart"] {
                add("POST", base + "/" + action, .admin) { d, c in await d.tailscaleAction(action, c) }
            }
        }

        // AI control and MCP settings.
        add("GET", "/api/ai/control/status", .admin, since: "2.5.0") { d, c in await d.aiStatus(c) }
        add("PUT", "/api/ai/control/mode", .admin, since: "2.5.0") { d, c in await d.setAIMode(c) }
        add("GET", "/api/mcp/config", .admin, since: "2.5.0") { d, c in await d.mcpConfig(c) }
        add("POST", "/api/mcp/config", .admin, since: "2.5.0") { d, c in await d.setMCPConfig(c) }
        add("POST", "/api/mcp/key/regenerate", .admin, since: "2.5.0") { d, c in await d.regenerateMCPKey(c) }

        // Keyboard and mouse.
        add("GET", "/api/ws", .session, webSocket: true) { d, c in await d.webSocketFallback(c) }
        return routes
    }
}
