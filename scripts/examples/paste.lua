-- Type text on the target with the device's paste endpoint (seed notes: POST /api/hid/paste).
-- Run: scripts/kvmlua --sim scripts/examples/paste.lua ["text to type"]
local dev = dev or kvm.connect()
local text = arg[1] or "vyos\nvyos\n"
dev:paste(text)
print(("pasted %d characters"):format(#text))
