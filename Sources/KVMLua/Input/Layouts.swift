import LuaBridge
import NanoKVM
import Synchronization

/// Keyboard layouts on the Lua side: `kvm.layouts()`, the layout a call types with, and the
/// defaults it falls back on. Which layout a `dev:type` (and `dev:live`, `macro:play`) uses:
/// `opts.layout`, else `dev.layout` (set by the script, or the profile's `layout`), else
/// kvmlua's `--layout`, else `us`.
public enum LayoutBindings {
    private static let commandLineLayout = Mutex<KeyboardLayout?>(nil)

    /// `--layout NAME`: the default of every device without its own. Raises `usage` for an
    /// unknown name (or one that needs the missing libxkbcommon).
    public static func setCommandLineLayout(_ name: String) throws(NanoKVMError) {
        let layout = try KeyboardLayout.resolve(name)
        commandLineLayout.withLock { $0 = layout }
    }

    /// The layout of `device` when a call names none.
    static func defaultLayout(for device: DeviceHandle?) -> KeyboardLayout {
        if let own = device?.layout.withLock({ $0 }) { return own }
        return commandLineLayout.withLock { $0 } ?? .us
    }

    /// The layout named by field `layout` of the options table at `index`, else the device's.
    static func layout(_ call: LuaCall, options: LuaTableArgument?, index: Int32, device: DeviceHandle?) throws -> KeyboardLayout {
        guard let name = try options?.string("layout") else { return defaultLayout(for: device) }
        return try resolve(call, name, index: index)
    }

    /// `name` as a layout; an unknown one is a usage error of argument `index`.
    static func resolve(_ call: LuaCall, _ name: String, index: Int32) throws -> KeyboardLayout {
        do {
            return try KeyboardLayout.resolve(name)
        } catch {
            throw call.argumentError(index, error.message)
        }
    }

    static var functions: [LuaFunctionSpec] {
        [
            LuaFunctionSpec(
                "kvm.layouts", signature: "kvm.layouts()", returns: "table",
                """
                The keyboard layouts this machine can type with (the `layout` option of `dev:type`,
                `dev.layout`, `--layout`): a list of `{name=, variant=, description=}` from
                Debian's xkb-data, layouts first, then their variants; `layout(variant)` is the
                name to use (`"ch(fr)"`). Without libxkbcommon, the four built-in layouts.
                """,
                body: { call in
                    let entries = XKBEngine.available().map { info -> LuaData in
                        .table([
                            (key: .string("name"), value: .string(info.name)),
                            (key: .string("variant"), value: .string(info.variant)),
                            (key: .string("description"), value: .string(info.description)),
                        ])
                    }
                    return call.returning(.array(entries))
                })
        ]
    }
}
