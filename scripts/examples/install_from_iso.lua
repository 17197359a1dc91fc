-- Install from an image: mount it as CD-ROM, power-cycle, open the boot menu (F12), pick the
-- CD-ROM, start the installer and answer its dialog by clicking its highlighted button.
-- Run: scripts/kvmlua --sim scripts/examples/install_from_iso.lua [image]
-- Until screen text can be read, screens are told apart by colour and the button is found by
-- its colour (the selected button of a text-mode dialog is red).
local dev = dev or kvm.connect()

local function blue_share(frame)
  local blue = 0
  for i = 0, 8 do
    for j = 0, 8 do
      local r, g, b = frame:pixel(math.floor(frame.width * (0.18 + 0.08 * i)), math.floor(frame.height * (0.18 + 0.08 * j)))
      if b >= 0x80 and r <= 0x50 and g <= 0x50 then blue = blue + 1 end
    end
  end
  return blue / 81
end

-- The centre of the first run of red pixels on rows across the lower middle of the screen.
local function find_red_button(frame)
  for y = math.floor(frame.height * 0.5), math.floor(frame.height * 0.8), 2 do
    local first, last
    for x = 0, frame.width - 1, 2 do
      local r, g, b = frame:pixel(x, y)
      if r >= 0x90 and g <= 0x40 and b <= 0x40 then
        first = first or x
        last = x
      elseif first then
        break
      end
    end
    if first and last - first > 20 then return (first + last) / 2, y end
  end
end

local image = arg[1] or dev.storage:images()[1]
if not pcall(dev.storage.mount, dev.storage, image, { cdrom = true }) then dev.storage:mount(image) end
print("mounted " .. image)

-- Power-cycle: off (a long press forces it), then on.
if dev:is_on() then dev:power_off { force = true } end
dev:power_on()
local menu = false
for _ = 1, 80 do
  dev:key("F12")
  kvm.sleep(0.2)
  local share = blue_share(dev:screenshot())
  if share > 0.1 and share < 0.6 then menu = true break end
end
if not menu then error("the boot menu did not show") end
print("boot menu")

dev:key("down")    -- Hard Disk, then the virtual media
dev:key("enter")
kvm.sleep(0.5)
dev:key("enter")   -- the installer's first entry: Install
local x, y
for _ = 1, 50 do
  kvm.sleep(0.2)
  x, y = find_red_button(dev:screenshot())
  if x then break end
end
if not x then error("no dialog button found") end
print(("clicking the highlighted button at %d,%d"):format(x, y))
local before = dev:screenshot()
dev:click("left", x / before.width, y / before.height)
dev:wait_change { timeout = 10 }
print("answered; the installer goes on")

local ok, state = pcall(dev.sim_state, dev)
if ok and state.machine then
  print("scene: " .. state.machine.scene)
  if state.machine.scene ~= "installing" and state.machine.scene ~= "installed" then
    error("the click did not answer the dialog: " .. state.machine.scene)
  end
end
