-- Frame detection: no MJPEG frames while the screen does not change (seed notes: the
-- /api/stream/mjpeg/detect toggle). dev.stream:set_detect is state-aware on every firmware.
local dev = dev or kvm.connect()
dev.stream:set_detect(true)
print("frame detection: " .. tostring(dev.stream:detect()))
dev.stream:set_detect(false)
print("frame detection: " .. tostring(dev.stream:detect()))
