import CLua
import LuaBridge
import NanoKVM

#if canImport(Glibc)
    import Glibc
#endif

/// One device of a fleet: the name output and files use, and what `kvm.connect` is given.
public struct FleetTarget: Sendable, Equatable {
    public var name: String
    /// A profile name or an address; empty for a simulated device.
    public var target: String

    public init(name: String, target: String) {
        self.name = name
        self.target = target
    }
}

/// Turns `--device` patterns, `--group` names and `kvm.devices()` selections into devices.
public enum FleetTargets {
    /// Whether `pattern` is a glob over profile names (`lab-*`, `rack?`, `[ab]-1`).
    public static func isGlob(_ pattern: String) -> Bool {
        pattern.contains("*") || pattern.contains("?") || pattern.contains("[")
    }

    /// `patterns` (profile names, profile globs, addresses) then the members of `groups`, in
    /// order, each device once. A glob that matches nothing and an unknown group are `usage`.
    public static func resolve(
        patterns: [String], groups groupNames: [String], config: KVMConfig.Contents
    ) throws(NanoKVMError) -> [FleetTarget] {
        var targets: [FleetTarget] = []
        var seen = Set<String>()
        func add(_ target: FleetTarget) {
            guard !seen.contains(target.target) else { return }
            seen.insert(target.target)
            var unique = target
            var suffix = 2
            // Two addresses with the same host and port (http and https) still get two names.
            while targets.contains(where: { $0.name == unique.name }) {
                unique.name = "\(target.name)#\(suffix)"
                suffix += 1
            }
            targets.append(unique)
        }
        for pattern in patterns {
            for target in try expand(pattern, config: config, source: nil) { add(target) }
        }
        for name in groupNames {
            guard let members = config.groups[name] else {
                let known = config.groups.keys.sorted()
                throw NanoKVMError(
                    .usage,
                    "no group '\(name)' in \(KVMConfig.path ?? "the config file")"
                        + (known.isEmpty ? " (it defines none)" : " (groups: \(known.joined(separator: ", ")))"))
            }
            for member in members {
                for target in try expand(member, config: config, source: "group '\(name)'") { add(target) }
            }
        }
        return targets
    }

    /// A device name as a file name (`--output-dir`'s logs, `{device}` in paths).
    public static func fileName(_ name: String) -> String { DevicePath.component(name) }

    /// One selection of `kvm.devices`: a group name, else a pattern.
    public static func resolve(selection: String, config: KVMConfig.Contents) throws(NanoKVMError) -> [FleetTarget] {
        config.groups[selection] != nil
            ? try resolve(patterns: [], groups: [selection], config: config)
            : try resolve(patterns: [selection], groups: [], config: config)
    }

    private static func expand(_ pattern: String, config: KVMConfig.Contents, source: String?) throws(NanoKVMError) -> [FleetTarget] {
        let names = config.profiles.keys.sorted()
        if isGlob(pattern) {
            let matches = names.filter { fnmatch(pattern, $0, 0) == 0 }
            guard !matches.isEmpty else {
                throw NanoKVMError(
                    .usage,
                    "\(source.map { "\($0): " } ?? "")'\(pattern)' matches no profile of \(KVMConfig.path ?? "the config file")"
                        + (names.isEmpty ? " (it defines none)" : " (profiles: \(names.joined(separator: ", ")))"))
            }
            return matches.map { FleetTarget(name: $0, target: $0) }
        }
        if config.profiles[pattern] != nil { return [FleetTarget(name: pattern, target: pattern)] }
        let address: DeviceAddress
        do { address = try DeviceAddress(parsing: pattern) } catch {
            throw NanoKVMError(.usage, "\(source.map { "\($0): " } ?? "")\(error.message)")
        }
        return [FleetTarget(name: address.displayName, target: pattern)]
    }
}

/// `kvm.devices`: a fleet from a script.
enum FleetBindings {
    static let connectOptions = ["user", "password", "insecure", "fingerprint", "ca", "timeout", "protocol", "layout"]

    /// `kvm._fleet_targets(selection)` → `{ {name=, target=} ... }`, for `kvm.devices`.
    static var targetsFunction: LuaFunctionSpec {
            LuaFunctionSpec(
                "kvm._fleet_targets", "",
                body: { call in
                    var selections: [String] = []
                    if call.type(1) == .table {
                        let list = LuaTableArgument(call: call, index: 1)
                        for i in 0..<list.length {
                            guard list.pushElement(i + 1) == .string, let text = call.stack.string(at: -1) else {
                                call.stack.pop()
                                throw call.argumentError(1, "element \(i + 1) must be a string (a group, profile, glob or address)")
                            }
                            call.stack.pop()
                            selections.append(text)
                        }
                    } else {
                        selections.append(try call.string(1))
                    }
                    guard !selections.isEmpty else { throw call.argumentError(1, "the list of devices is empty") }
                    let config = try KVMConfig.load()
                    var targets: [FleetTarget] = []
                    for selection in selections {
                        for target in try FleetTargets.resolve(selection: selection, config: config)
                        where !targets.contains(where: { $0.target == target.target }) {
                            targets.append(target)
                        }
                    }
                    return call.returning(
                        .array(targets.map { .table([(.string("name"), .string($0.name)), (.string("target"), .string($0.target))]) }))
                })
    }

    static func install(in runtime: LuaRuntime) throws(LuaRuntimeError) {
        let L = runtime.L
        runtime.pushGlobal("kvm")
        runtime.push(function: targetsFunction, documented: false)
        LuaStack(L).setRawField(-2, "_fleet_targets")
        kvm_lua_pop(L, 1)
        try runtime.runTrusted(luaPrelude, chunkName: "=kvm")
        runtime.pushGlobal("kvm")
        LuaStack(L).rawField(-1, "devices")
        runtime.document(functionOnTop: devicesSpec)
        kvm_lua_pop(L, 2)
    }

    static let luaPrelude = #"""
        local kvm = kvm
        local type, pairs, pcall, error, ipairs, tostring = type, pairs, pcall, error, ipairs, tostring

        function kvm.devices(selection, opts)
          local kind = type(selection)
          if kind ~= "string" and kind ~= "table" then
            error(kvm._usage("bad argument #1 to 'kvm.devices' (string or table expected, got " .. kind .. ")"), 2)
          end
          if opts ~= nil and type(opts) ~= "table" then
            error(kvm._usage("bad argument #2 to 'kvm.devices' (table expected, got " .. type(opts) .. ")"), 2)
          end
          opts = opts or {}
          local problem = kvm._option_problem(opts, "limit", "partial", "user", "password", "insecure", "fingerprint",
            "ca", "timeout", "protocol", "layout")
          if problem then error(kvm._usage("bad argument #2 to 'kvm.devices' (" .. problem .. ")"), 2) end
          local limit = opts.limit or 32
          if type(limit) ~= "number" or limit < 1 or limit ~= limit // 1 then
            error(kvm._usage("bad argument #2 to 'kvm.devices' (field 'limit' must be an integer >= 1)"), 2)
          end
          local ok, targets = pcall(kvm._fleet_targets, selection)
          if not ok then error(targets, 2) end
          local connect_options = {}
          for key, value in pairs(opts) do
            if key ~= "limit" and key ~= "partial" then connect_options[key] = value end
          end
          local connected, failures = {}, {}
          for index, target in ipairs(targets) do target.index = index end
          kvm.parallel(targets, function(target)
            local options = { name = target.name }
            for key, value in pairs(connect_options) do options[key] = value end
            local done, device = pcall(kvm.connect, target.target, options)
            if done then
              connected[target.index] = device
            else
              failures[#failures + 1] = { name = target.name, index = target.index, err = device }
            end
          end, { limit = limit })
          local devices = {}
          for index = 1, #targets do
            if connected[index] then devices[#devices + 1] = connected[index] end
          end
          if #failures > 0 and not opts.partial then
            for _, device in ipairs(devices) do pcall(device.close, device) end
            table.sort(failures, function(a, b) return a.index < b.index end)
            local first = failures[1].err
            if type(first) == "table" and type(first.msg) == "string" then
              first.msg = failures[1].name .. ": " .. first.msg
                .. (#failures > 1 and (" (and " .. (#failures - 1) .. " more)") or "")
            end
            error(first, 2)
          end
          local failed = {}
          for _, failure in ipairs(failures) do failed[failure.name] = failure.err end
          return devices, failed
        end
        """#

    static var devicesSpec: LuaFunctionSpec { LuaFunctionSpec(
        "kvm.devices", signature: "kvm.devices(selection [, opts])", returns: "list of Device, failures",
        options: ["limit", "partial"] + connectOptions,
        """
        Connects to several devices at once and returns them as a list (in the order named;
        `d.name` tells which is which). `selection`: a group of the config file, a profile name,
        a profile glob (`"lab-*"`), an address, or a list of these. `opts`: `limit` (connections
        at once, default 32), `partial` (true: return the devices that connected and, second, a
        table name -> error of those that did not; default: if any fails, close the others and
        raise the first error, its message starting with the device's name), and the options of
        `kvm.connect` for every device (`user`, `password`, `insecure`, `fingerprint`, `ca`,
        `timeout`, `protocol`, `layout`; `name` is each device's own). Use with
        `kvm.parallel(devices, fn)`.
        """,
        body: nil) }
}
