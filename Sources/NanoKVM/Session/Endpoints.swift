// The REST routes of the original NanoKVM with the versions that have them (protocol §6, §7).
// Every typed call names its endpoint here; the client checks it against the detected
// firmware and raises `unsupported` before anything is sent.

public struct APIEndpoint: Sendable, Hashable, CustomStringConvertible {
    public let method: String
    /// Route pattern as the server registers it (`:name` marks a path parameter).
    public let path: String
    /// First version with the route (2.0.0 stands for the whole 2.0.x generation).
    public let since: FirmwareVersion
    /// Last version with the route, nil while it still exists.
    public let until: FirmwareVersion?
    /// Only on the multi-user firmware after 2.5.0.
    public let multiUserOnly: Bool

    public init(_ method: String, _ path: String, since: FirmwareVersion, until: FirmwareVersion? = nil, multiUserOnly: Bool = false) {
        self.method = method
        self.path = path
        self.since = since
        self.until = until
        self.multiUserOnly = multiUserOnly
    }

    public var description: String { "\(method) \(path)" }
}

private func v(_ major: Int, _ minor: Int, _ patch: Int) -> FirmwareVersion { FirmwareVersion(major, minor, patch) }
/// The closed-source 2.0.x generation as a whole.
private let gen2_0 = FirmwareVersion(2, 0, 0)
private let last2_0 = FirmwareVersion(2, 0, 999)
private let main = FirmwareVersion(2, 5, 0)

extension APIEndpoint {
    // MARK: Auth and users
    public static let login = APIEndpoint("POST", "/api/auth/login", since: gen2_0)
    public static let logout = APIEndpoint("POST", "/api/auth/logout", since: v(2, 1, 6))
    public static let account = APIEndpoint("GET", "/api/auth/account", since: v(2, 1, 4))
    public static let passwordState = APIEndpoint("GET", "/api/auth/password", since: v(2, 1, 1))
    public static let changePassword = APIEndpoint("POST", "/api/auth/password", since: gen2_0)
    public static let listUsers = APIEndpoint("GET", "/api/auth/users", since: main, multiUserOnly: true)
    public static let createUser = APIEndpoint("POST", "/api/auth/users", since: main, multiUserOnly: true)
    public static let updateUser = APIEndpoint("PUT", "/api/auth/users/:username", since: main, multiUserOnly: true)
    public static let deleteUser = APIEndpoint("DELETE", "/api/auth/users/:username", since: main, multiUserOnly: true)
    public static let resetUserPassword = APIEndpoint(
        "POST", "/api/auth/users/:username/password", since: main, multiUserOnly: true)

    // MARK: VM information, GPIO, screen
    public static let info = APIEndpoint("GET", "/api/vm/info", since: gen2_0)
    public static let hardware = APIEndpoint("GET", "/api/vm/hardware", since: v(2, 1, 5))
    public static let gpioPress = APIEndpoint("POST", "/api/vm/gpio", since: gen2_0)
    public static let gpioLEDs = APIEndpoint("GET", "/api/vm/gpio", since: v(2, 1, 0))
    public static let gpioLEDsLegacy = APIEndpoint("GET", "/api/vm/gpio/led", since: gen2_0, until: last2_0)
    public static let screen = APIEndpoint("POST", "/api/vm/screen", since: gen2_0)

    // MARK: Virtual USB devices and scripts
    public static let virtualDevices = APIEndpoint("GET", "/api/vm/device/virtual", since: gen2_0)
    public static let toggleVirtualDevice = APIEndpoint("POST", "/api/vm/device/virtual", since: gen2_0)
    public static let scripts = APIEndpoint("GET", "/api/vm/script", since: gen2_0)
    public static let uploadScript = APIEndpoint("POST", "/api/vm/script/upload", since: gen2_0)
    public static let runScript = APIEndpoint("POST", "/api/vm/script/run", since: gen2_0)
    public static let deleteScript = APIEndpoint("DELETE", "/api/vm/script", since: gen2_0)

    // MARK: System settings
    public static let sshState = APIEndpoint("GET", "/api/vm/ssh", since: v(2, 1, 6))
    public static let sshEnable = APIEndpoint("POST", "/api/vm/ssh/enable", since: v(2, 1, 6))
    public static let sshDisable = APIEndpoint("POST", "/api/vm/ssh/disable", since: v(2, 1, 6))
    public static let mdnsState = APIEndpoint("GET", "/api/vm/mdns", since: v(2, 2, 2))
    public static let mdnsEnable = APIEndpoint("POST", "/api/vm/mdns/enable", since: v(2, 2, 2))
    public static let mdnsDisable = APIEndpoint("POST", "/api/vm/mdns/disable", since: v(2, 2, 2))
    public static let oled = APIEndpoint("GET", "/api/vm/oled", since: v(2, 1, 4))
    public static let setOLED = APIEndpoint("POST", "/api/vm/oled", since: v(2, 1, 4))
    public static let swap = APIEndpoint("GET", "/api/vm/swap", since: v(2, 2, 6))
    public static let setSwap = APIEndpoint("POST", "/api/vm/swap", since: v(2, 2, 6))
    public static let memoryLimit = APIEndpoint("GET", "/api/vm/memory/limit", since: v(2, 1, 4))
    public static let setMemoryLimit = APIEndpoint("POST", "/api/vm/memory/limit", since: v(2, 1, 4))
    public static let hdmi = APIEndpoint("GET", "/api/vm/hdmi", since: v(2, 2, 8))
    public static let hdmiEnable = APIEndpoint("POST", "/api/vm/hdmi/enable", since: v(2, 2, 8))
    public static let hdmiDisable = APIEndpoint("POST", "/api/vm/hdmi/disable", since: v(2, 2, 8))
    public static let hdmiReset = APIEndpoint("POST", "/api/vm/hdmi/reset", since: v(2, 1, 5))
    public static let hdmiIdleTimeout = APIEndpoint("POST", "/api/vm/hdmi/timeout", since: v(2, 5, 0))
    public static let mouseJiggler = APIEndpoint("GET", "/api/vm/mouse-jiggler", since: v(2, 2, 6))
    /// Registered with the trailing slash; posting without it earns a 307 (§2.3).
    public static let setMouseJiggler = APIEndpoint("POST", "/api/vm/mouse-jiggler/", since: v(2, 2, 6))
    public static let hostname = APIEndpoint("GET", "/api/vm/hostname", since: v(2, 2, 6))
    public static let setHostname = APIEndpoint("POST", "/api/vm/hostname", since: v(2, 2, 6))
    public static let webTitle = APIEndpoint("GET", "/api/vm/web-title", since: v(2, 2, 6))
    public static let setWebTitle = APIEndpoint("POST", "/api/vm/web-title", since: v(2, 2, 6))
    public static let setTLS = APIEndpoint("POST", "/api/vm/tls", since: v(2, 2, 7))
    public static let autostartScripts = APIEndpoint("GET", "/api/vm/autostart", since: v(2, 3, 1))
    public static let autostartScript = APIEndpoint("GET", "/api/vm/autostart/:name", since: v(2, 3, 1))
    public static let saveAutostartScript = APIEndpoint("POST", "/api/vm/autostart/:name", since: v(2, 3, 1))
    public static let deleteAutostartScript = APIEndpoint("DELETE", "/api/vm/autostart/:name", since: v(2, 3, 1))
    public static let reboot = APIEndpoint("POST", "/api/vm/system/reboot", since: v(2, 2, 2))

    // MARK: HID over HTTP
    public static let paste = APIEndpoint("POST", "/api/hid/paste", since: gen2_0)
    public static let hidReset = APIEndpoint("POST", "/api/hid/reset", since: gen2_0)
    public static let hidMode = APIEndpoint("GET", "/api/hid/mode", since: v(2, 2, 5))
    public static let setHIDMode = APIEndpoint("POST", "/api/hid/mode", since: v(2, 2, 5))
    public static let keyboardLEDs = APIEndpoint("GET", "/api/hid/leds", since: v(2, 5, 0))
    public static let shortcuts = APIEndpoint("GET", "/api/hid/shortcuts", since: v(2, 3, 2))
    public static let addShortcut = APIEndpoint("POST", "/api/hid/shortcut", since: v(2, 3, 2))
    public static let deleteShortcut = APIEndpoint("DELETE", "/api/hid/shortcut", since: v(2, 3, 2))
    public static let leaderKey = APIEndpoint("GET", "/api/hid/shortcut/leader-key", since: v(2, 3, 4))
    public static let setLeaderKey = APIEndpoint("POST", "/api/hid/shortcut/leader-key", since: v(2, 3, 4))

    // MARK: Storage
    public static let images = APIEndpoint("GET", "/api/storage/image", since: v(2, 1, 0))
    public static let imagesLegacy = APIEndpoint("GET", "/api/storage/images", since: gen2_0, until: last2_0)
    public static let mountedImage = APIEndpoint("GET", "/api/storage/image/mounted", since: v(2, 1, 0))
    public static let mountedImageLegacy = APIEndpoint("GET", "/api/storage/images/mounted", since: gen2_0, until: last2_0)
    public static let mountImage = APIEndpoint("POST", "/api/storage/image/mount", since: gen2_0)
    public static let cdromState = APIEndpoint("GET", "/api/storage/cdrom", since: v(2, 2, 1))
    public static let deleteImage = APIEndpoint("POST", "/api/storage/image/delete", since: v(2, 3, 0))

    // MARK: Stream control
    public static let mjpegStream = APIEndpoint("GET", "/api/stream/mjpeg", since: gen2_0)
    public static let frameDetectionState = APIEndpoint("GET", "/api/stream/mjpeg/detect", since: gen2_0, until: v(2, 2, 2))
    public static let frameDetection = APIEndpoint("POST", "/api/stream/mjpeg/detect", since: gen2_0)
    public static let pauseFrameDetection = APIEndpoint("POST", "/api/stream/mjpeg/detect/stop", since: gen2_0)

    // MARK: Network
    public static let wakeOnLAN = APIEndpoint("POST", "/api/network/wol", since: gen2_0)
    public static let wakeHistory = APIEndpoint("GET", "/api/network/wol/mac", since: gen2_0)
    public static let deleteWakeTarget = APIEndpoint("DELETE", "/api/network/wol/mac", since: gen2_0)
    public static let nameWakeTarget = APIEndpoint("POST", "/api/network/wol/mac/name", since: v(2, 2, 6))
    public static let wifi = APIEndpoint("GET", "/api/network/wifi", since: v(2, 1, 3))
    public static let wifiSetupLegacy = APIEndpoint("POST", "/api/auth/wifi", since: v(2, 1, 2), until: v(2, 1, 3))
    public static let wifiSetup = APIEndpoint("POST", "/api/network/wifi", since: v(2, 1, 4))
    public static let wifiVerifyAPKey = APIEndpoint("POST", "/api/network/wifi/verify", since: v(2, 3, 6))
    public static let wifiConnect = APIEndpoint("POST", "/api/network/wifi/connect", since: v(2, 3, 1))
    public static let wifiDisconnect = APIEndpoint("POST", "/api/network/wifi/disconnect", since: v(2, 3, 1))
    public static let dns = APIEndpoint("GET", "/api/network/dns", since: v(2, 4, 1))
    public static let setDNS = APIEndpoint("POST", "/api/network/dns", since: v(2, 4, 1))

    // MARK: Tailscale (2.1.6+ under /api/extensions; older under /api/network)
    public static let tailscaleStatus = APIEndpoint("GET", "/api/extensions/tailscale/status", since: v(2, 1, 6))
    public static let tailscaleInstall = APIEndpoint("POST", "/api/extensions/tailscale/install", since: v(2, 1, 6))
    public static let tailscaleUninstall = APIEndpoint("POST", "/api/extensions/tailscale/uninstall", since: v(2, 1, 6))
    public static let tailscaleStart = APIEndpoint("POST", "/api/extensions/tailscale/start", since: v(2, 1, 6))
    public static let tailscaleStop = APIEndpoint("POST", "/api/extensions/tailscale/stop", since: v(2, 1, 6))
    public static let tailscaleRestart = APIEndpoint("POST", "/api/extensions/tailscale/restart", since: v(2, 1, 6))
    public static let tailscaleUp = APIEndpoint("POST", "/api/extensions/tailscale/up", since: v(2, 1, 6))
    public static let tailscaleDown = APIEndpoint("POST", "/api/extensions/tailscale/down", since: v(2, 1, 6))
    public static let tailscaleLogin = APIEndpoint("POST", "/api/extensions/tailscale/login", since: v(2, 1, 6))
    public static let tailscaleLogout = APIEndpoint("POST", "/api/extensions/tailscale/logout", since: v(2, 1, 6))
    public static let tailscaleStatusLegacy = APIEndpoint("GET", "/api/network/tailscale/status", since: gen2_0, until: v(2, 1, 5))
    public static let tailscaleCommandLegacy = APIEndpoint("POST", "/api/network/tailscale/status", since: gen2_0, until: v(2, 1, 3))
    public static let tailscaleInstallLegacy = APIEndpoint("POST", "/api/network/tailscale/install", since: gen2_0, until: v(2, 1, 5))
    public static let tailscaleLoginLegacy = APIEndpoint("POST", "/api/network/tailscale/login", since: gen2_0, until: v(2, 1, 5))
    public static let tailscaleLogoutLegacy = APIEndpoint("POST", "/api/network/tailscale/logout", since: gen2_0, until: v(2, 1, 5))
    public static let tailscaleUpLegacy = APIEndpoint("POST", "/api/network/tailscale/up", since: v(2, 1, 4), until: v(2, 1, 5))
    public static let tailscaleDownLegacy = APIEndpoint("POST", "/api/network/tailscale/down", since: v(2, 1, 4), until: v(2, 1, 5))
    public static let tailscaleUninstallLegacy = APIEndpoint(
        "POST", "/api/network/tailscale/uninstall", since: v(2, 1, 4), until: v(2, 1, 5))
    public static let tailscaleRestartLegacy = APIEndpoint(
        "POST", "/api/network/tailscale/restart", since: v(2, 1, 5), until: v(2, 1, 5))
    public static let tailscaleStopLegacy = APIEndpoint("POST", "/api/network/tailscale/stop", since: v(2, 1, 5), until: v(2, 1, 5))

    // MARK: Application update and downloads
    public static let applicationVersion = APIEndpoint("GET", "/api/application/version", since: v(2, 1, 0))
    public static let firmwareVersion = APIEndpoint("GET", "/api/firmware/version", since: gen2_0, until: last2_0)
    public static let applicationUpdate = APIEndpoint("POST", "/api/application/update", since: v(2, 1, 0))
    public static let firmwareUpdate = APIEndpoint("POST", "/api/firmware/update", since: gen2_0, until: last2_0)
    public static let offlineUpdate = APIEndpoint("POST", "/api/application/update/offline", since: v(2, 3, 1))
    public static let previewChannel = APIEndpoint("GET", "/api/application/preview", since: v(2, 2, 5))
    public static let setPreviewChannel = APIEndpoint("POST", "/api/application/preview", since: v(2, 2, 5))
    public static let updateServer = APIEndpoint("GET", "/api/application/update-server", since: main, multiUserOnly: true)
    public static let setUpdateServer = APIEndpoint("POST", "/api/application/update-server", since: main, multiUserOnly: true)
    public static let downloadImage = APIEndpoint("POST", "/api/download/image", since: v(2, 1, 6))
    public static let downloadStatus = APIEndpoint("GET", "/api/download/image/status", since: v(2, 1, 6))
    public static let downloadEnabled = APIEndpoint("GET", "/api/download/image/enabled", since: v(2, 1, 6))
    public static let cancelDownload = APIEndpoint("POST", "/api/download/image/cancel", since: v(2, 5, 0))
    public static let uploadISO = APIEndpoint("POST", "/api/download/file", since: v(2, 3, 1))

    // MARK: WebSocket
    public static let webSocket = APIEndpoint("GET", "/api/ws", since: gen2_0)
}
