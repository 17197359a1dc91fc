-- Save one frame of the HDMI capture as a JPEG (seed notes: curl .../api/stream/mjpeg | ffmpeg -frames:v 1).
-- Run: scripts/kvmlua --sim scripts/examples/frame_to_jpeg.lua [file.jpg]
local dev = dev or kvm.connect()
local path = arg[1] or "screen.jpg"
local frame = dev:screenshot(path)
print(("saved %s: %dx%d, %d bytes"):format(path, frame.width, frame.height, frame.size))
