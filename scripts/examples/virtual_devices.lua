-- The virtual USB network adapter and disk (seed notes: /api/vm/device/virtual, which only
-- toggles; dev.virtual:set reads the state first and toggles only when needed).
local dev = dev or kvm.connect()
local before = dev.virtual:status()
print(("network: %s, disk: %s"):format(tostring(before.network), tostring(before.disk)))
dev.virtual:set("network", not before.network)
print("network now: " .. tostring(dev.virtual:status().network))
dev.virtual:set("network", before.network)   -- as it was
print("network restored: " .. tostring(dev.virtual:status().network))
