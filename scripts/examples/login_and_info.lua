-- Log in and read the device information (seed notes: "Login to NanoKVM and receive token", /api/vm/info).
-- Run: scripts/kvmlua --sim scripts/examples/login_and_info.lua
--      scripts/kvmlua --device 192.168.0.10 scripts/examples/login_and_info.lua
local dev = dev or kvm.connect()   -- --device/--sim bind `dev`; else $KVMLUA_DEVICE
local info = dev:info()
print(("%s: application %s (%s firmware), image %s"):format(dev.url, info.version, dev.generation, info.image))
print("addresses: " .. table.concat(info.ips, ", "), "mdns: " .. info.mdns)
