-- Reset the USB keyboard and mouse of the device (seed notes: POST /api/hid/reset).
local dev = dev or kvm.connect()
dev.hid:reset()
print("HID reset done")
