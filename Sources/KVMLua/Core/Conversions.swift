import LuaBridge
import NanoKVM

/// A result of the client library as a Lua value (tables with snake_case fields).
protocol LuaDataConvertible: Sendable {
    var luaData: LuaData { get }
}

extension String: LuaDataConvertible { var luaData: LuaData { .string(self) } }
extension Bool: LuaDataConvertible { var luaData: LuaData { .bool(self) } }
extension Int: LuaDataConvertible { var luaData: LuaData { .int(self) } }
extension Double: LuaDataConvertible { var luaData: LuaData { .number(self) } }
extension Optional: LuaDataConvertible where Wrapped: LuaDataConvertible {
    var luaData: LuaData { self?.luaData ?? .null }
}
extension Array: LuaDataConvertible where Element: LuaDataConvertible {
    var luaData: LuaData { .array(map(\.luaData)) }
}

extension JSONValue: LuaDataConvertible {
    /// JSON from the device as plain Lua values: null becomes `kvm.json.null` only through
    /// `kvm.json.decode`; here it becomes nil (absent), as the device means "nothing".
    var luaData: LuaData {
        switch self {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .integer(let i): return .integer(i)
        case .double(let d): return .number(d)
        case .string(let s): return .string(s)
        case .array(let items): return .array(items.map(\.luaData))
        case .object(let members): return .table(members.map { (key: .string($0.key), value: $0.value.luaData) })
        }
    }
}

extension DeviceInfo: LuaDataConvertible {
    var luaData: LuaData {
        .fields([
            "ip": .string(ip), "ips": .array(ips.map { .string($0) }), "mdns": .string(mdns), "image": .string(image),
            "version": .string(version), "device_key": .string(deviceKey), "raw": raw.luaData,
        ])
    }
}

extension ATXLEDs: LuaDataConvertible {
    var luaData: LuaData { .fields(["power": .bool(power), "hdd": .bool(hdd)]) }
}

extension VirtualDeviceStatus: LuaDataConvertible {
    var luaData: LuaData { .fields(["network": .bool(network), "disk": .bool(disk)]) }
}

extension KeyboardLEDs: LuaDataConvertible {
    var luaData: LuaData {
        .fields(["caps": .bool(capsLock), "num": .bool(numLock), "scroll": .bool(scrollLock), "known": .bool(known),
                 "updated_at": .string(updatedAt)])
    }
}

extension Shortcut: LuaDataConvertible {
    var luaData: LuaData {
        .fields(["id": .string(id), "keys": .array(keys.map { .fields(["code": .string($0.code), "label": .string($0.label)]) })])
    }
}

extension OLEDSettings: LuaDataConvertible {
    var luaData: LuaData { .fields(["present": .bool(present), "sleep": .int(sleepSeconds)]) }
}

extension MemoryLimit: LuaDataConvertible {
    var luaData: LuaData { .fields(["enabled": .bool(enabled), "limit": .int(megabytes)]) }
}

extension HDMIStatus: LuaDataConvertible {
    var luaData: LuaData {
        var pairs: [(key: LuaData, value: LuaData)] = [(key: .string("enabled"), value: .bool(enabled))]
        if let signal { pairs.append((key: .string("signal"), value: .bool(signal))) }
        if let idleTimeoutMinutes { pairs.append((key: .string("idle_timeout"), value: .int(idleTimeoutMinutes))) }
        return .table(pairs)
    }
}

extension MouseJigglerSettings: LuaDataConvertible {
    var luaData: LuaData { .fields(["enabled": .bool(enabled), "mode": .string(mode.rawValue)]) }
}

extension WakeTarget: LuaDataConvertible {
    var luaData: LuaData {
        var pairs: [(key: LuaData, value: LuaData)] = [(key: .string("mac"), value: .string(mac))]
        if let name { pairs.append((key: .string("name"), value: .string(name))) }
        return .table(pairs)
    }
}

extension WiFiStatus: LuaDataConvertible {
    var luaData: LuaData {
        .fields(["supported": .bool(supported), "ap_mode": .bool(accessPointMode), "connected": .bool(connected),
                 "ssid": .string(ssid)])
    }
}

extension DNSSettings: LuaDataConvertible {
    var luaData: LuaData {
        .fields(["mode": .string(mode.rawValue), "servers": servers.luaData, "effective": effective.luaData,
                 "dhcp": dhcp.luaData, "info": info.luaData])
    }
}

extension TailscaleStatus: LuaDataConvertible {
    var luaData: LuaData {
        .fields(["state": .string(state.rawValue), "name": .string(name), "ip": .string(ip), "account": .string(account)])
    }
}

extension ApplicationVersions: LuaDataConvertible {
    var luaData: LuaData { .fields(["current": .string(current), "latest": .string(latest)]) }
}

extension UpdateServerSettings: LuaDataConvertible {
    var luaData: LuaData { .fields(["enabled": .bool(enabled), "url": .string(url)]) }
}

extension DownloadStatus: LuaDataConvertible {
    var luaData: LuaData { .fields(["status": .string(state.rawValue), "file": .string(file), "percentage": .string(percentage)]) }
}

extension Account: LuaDataConvertible {
    var luaData: LuaData {
        var pairs: [(key: LuaData, value: LuaData)] = [(key: .string("username"), value: .string(username))]
        if let role { pairs.append((key: .string("role"), value: .string(role.rawValue))) }
        return .table(pairs)
    }
}

extension UserInfo: LuaDataConvertible {
    var luaData: LuaData {
        .fields(["username": .string(username), "role": .string(role.rawValue), "enabled": .bool(enabled),
                 "system": .bool(systemAccount)])
    }
}

/// Reads a Lua value (raw access) as JSON for request bodies: `kvm.json`'s rules.
extension LuaCall {
    func json(_ index: Int32) throws(LuaUsageError) -> JSONValue {
        var visiting = Set<UnsafeRawPointer>()
        return try JSONBindings.toJSON(L, index: index, call: self, argument: index, depth: 0, visiting: &visiting)
    }
}
