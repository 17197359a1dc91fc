-- Firmware setup: power on (or reset), hit Delete until the setup screen shows, move the
-- NanoKVM Virtual CD-ROM first in the boot order, save with F10 + Enter.
-- Run: scripts/kvmlua --sim scripts/examples/bios_boot_order.lua [image]
-- Until screen text can be read, screens are told apart by colour: setup is blue.
local dev = dev or kvm.connect()

-- The share of a 9x9 grid of points over the middle of the screen that are VGA blue.
local function blue_share()
  local frame = dev:screenshot()
  local blue = 0
  for i = 0, 8 do
    for j = 0, 8 do
      local r, g, b = frame:pixel(math.floor(frame.width * (0.18 + 0.08 * i)), math.floor(frame.height * (0.18 + 0.08 * j)))
      if b >= 0x80 and r <= 0x50 and g <= 0x50 then blue = blue + 1 end
    end
  end
  return blue / 81
end

-- The CD-ROM is a boot device only while an image is mounted as one (firmware without the
-- CD-ROM flag mounts it as a USB disk, listed as NanoKVM Virtual Disk).
local image = arg[1] or dev.storage:images()[1]
if not pcall(dev.storage.mount, dev.storage, image, { cdrom = true }) then dev.storage:mount(image) end
print("mounted " .. image)

if dev:is_on() then dev:reset() else dev:power_on() end
-- Keys before the "Press DEL" window opens are ignored: repeat until setup shows.
local entered = false
for _ = 1, 80 do
  dev:key("delete")
  kvm.sleep(0.2)
  if blue_share() > 0.6 then entered = true break end
end
if not entered then error("setup did not show") end
print("in setup")

dev:key("right", "right")   -- Main -> Advanced -> Boot
dev:key("down")             -- Boot Option #2: the virtual media (Hard Disk is #1)
dev:key("NumpadAdd")        -- + moves it up to #1
kvm.sleep(0.3)
dev:key("F10")              -- Save & reset?
kvm.sleep(0.3)
dev:key("enter")            -- Yes
for _ = 1, 50 do
  if blue_share() < 0.1 then break end
  kvm.sleep(0.2)
end
print("saved; the machine resets")

-- On the simulator, check what the firmware kept.
local ok, state = pcall(dev.sim_state, dev)
if ok and state.machine then
  local first = state.machine.bootOrder[1]
  print("boot order: " .. table.concat(state.machine.bootOrder, ", "))
  if not first:find("NanoKVM Virtual", 1, true) then error("the virtual media is not first: " .. first) end
end
