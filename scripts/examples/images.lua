-- List the disk images, mount one as the target's USB disk and check what is mounted
-- (seed notes: /api/storage/images, /api/storage/image/mount, /api/storage/images/mounted).
-- Run: scripts/kvmlua --sim scripts/examples/images.lua [image path]
local dev = dev or kvm.connect()
local images = dev.storage:images()
for _, path in ipairs(images) do print("image: " .. path) end
local chosen = arg[1] or images[1]
if not chosen then error("no image on the device") end
dev.storage:mount(chosen)
print("mounted: " .. tostring(dev.storage:mounted()))
dev.storage:unmount()
print("mounted after unmount: " .. tostring(dev.storage:mounted()))
