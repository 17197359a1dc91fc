-- Press the power button: short (800 ms, e.g. a shutdown request) and, with --long, long
-- (8000 ms, forces the host off). Seed notes: POST /api/vm/gpio {"type":"power","duration":800}.
-- Run: scripts/kvmlua --sim scripts/examples/power.lua [--long]
local dev = dev or kvm.connect()
print("host is " .. (dev:is_on() and "on" or "off"))
dev:power("short")
print("after a short press: " .. (dev:is_on() and "on" or "off"))
if arg[1] == "--long" then
  dev:power("long")
  print("after a long press: " .. (dev:is_on() and "on" or "off"))
end
-- State-aware: presses only if needed, then waits for the LED.
dev:power_on { timeout = 30 }
print("now: " .. (dev:is_on() and "on" or "off"))
