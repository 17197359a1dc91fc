-- Firmware setup: reset the machine, press Delete until the setup screen shows, move the
-- NanoKVM virtual media to the top of the boot order, save with F10, and check that the
-- machine now boots the image.
-- Run: scripts/kvmlua --sim scripts/examples/bios_boot_order.lua [image]
-- The text is read with OCR (dev:wait_text, dev:ocr). Which setup tab is selected only its
-- colour tells, so that is the needle needles/bios-boot-tab.json (made by
-- needles/make_needles.lua on the simulator at 1280x720; on other firmware make your own).
local dev = dev or kvm.connect()
local here = arg[0]:match("^(.*)/") or "."
local needles = kvm.needle.load(here .. "/needles")

-- openQA's send_key_until_needlematch: press `key` until one of `needle_list` shows; gives up
-- after `timeout` seconds. After each press the screen is given up to `every` seconds to change
-- before it is checked again, so a slow screen is not pressed past the wanted state. (A change
-- is more than 0.5% of the pixels: a ticking clock is less, a moved highlight more.)
local function key_until_match(needle_list, key, every, timeout)
  local deadline = kvm.now() + timeout
  local frame = dev:screenshot()
  while true do
    local match, why = frame:match(needle_list)
    if match then return match end
    if kvm.now() >= deadline then error(("pressed %s for %d s: %s"):format(key, timeout, why), 0) end
    local before = frame
    dev:key(key)
    local settle = kvm.now() + every
    repeat frame = dev:screenshot() until frame:diff(before) > 0.005 or kvm.now() >= settle
  end
end

-- The Boot tab's list as read, in screen order: { {text=, area=}, ... }, one per "Boot Option"
-- line, `area` the line's row across the panel. Only the left panel is read (the help text on
-- the right would mix into the lines). The order of the lines is what counts: OCR reads the
-- simulator's "#1" of "Boot Option #1" unreliably (and "[" as "C", "NanoKVM" as "HanoKVH").
local left_panel = { x = 0, y = 0.12, w = 0.67, h = 0.75 }
local function boot_options()
  local read = dev:ocr { area = left_panel }
  local options = {}
  for i, text in ipairs(read.lines) do
    if text:find("Option", 1, true) then
      local top, bottom = 1, 0
      for _, word in ipairs(read.words) do
        if word.line == i then top, bottom = math.min(top, word.y), math.max(bottom, word.y + word.h) end
      end
      local pad = (bottom - top) / 2
      options[#options + 1] = { text = text, area = { x = left_panel.x, y = top - pad, w = left_panel.w, h = bottom - top + 2 * pad } }
    end
  end
  return options
end

local function describe(options)
  local parts = {}
  for n, option in ipairs(options) do parts[n] = ("%d. %s"):format(n, option.text) end
  return table.concat(parts, "; ")
end

-- "Virtual" has been read as "VYirtual" on this blue screen.
local function is_virtual_media(text) return text:lower():find("irtual", 1, true) ~= nil end

-- The CD-ROM is a boot device only while an image is mounted as one (firmware before 2.2.1
-- cannot present a CD-ROM: the image becomes a USB disk, listed as NanoKVM Virtual Disk).
local image = arg[1] or dev.storage:images()[1]
if not image then error("no image on the device to boot from") end
local mounted, err = pcall(dev.storage.mount, dev.storage, image, { cdrom = true })
if not mounted then
  if getmetatable(err) ~= kvm.Error or err.kind ~= "unsupported" then error(err, 0) end
  dev.storage:mount(image)
end
print(("mounted %s as %s"):format(image, mounted and "CD-ROM" or "USB disk"))

if dev:is_on() then dev:reset() else dev:power_on() end
-- Keys before the POST's "Press DEL" window opens are lost: press Delete every 0.2 s until the
-- setup screen's title shows.
dev:wait_text("Setup Utility", { press = "delete", timeout = 60 })
print("in setup")

key_until_match(needles:tagged("bios-boot-tab"), "right", 2, 20)
local before = boot_options()
local position
for n, option in ipairs(before) do
  if is_virtual_media(option.text) then position = n break end
end
if not position then error("the Boot tab lists no NanoKVM virtual media; read: " .. describe(before)) end
print(("boot order: %s (the virtual media is #%d)"):format(describe(before), position))

if position == 1 then
  print("already first; leaving setup without changes")
  dev:key("escape")
else
  -- The cursor starts on Boot Option #1: go down to the media, then + moves it up one place.
  for _ = 2, position do dev:key("down") end
  for _ = 2, position do dev:key("NumpadAdd") end
  local first = dev:wait_text("irtual", { area = before[1].area, timeout = 10 })
  print("first now: " .. first.line)
  dev:key("F10")
  -- The confirmation is a box in the middle of the screen: read there (over the whole setup
  -- screen OCR misses it).
  dev:wait_text("Save configuration", { area = { x = 0.2, y = 0.25, w = 0.6, h = 0.35 }, mode = "block", timeout = 10 })
  dev:key("enter")   -- Yes is selected
  print("saved; the machine resets")
end

-- The proof: the machine resets and boots the image (the simulator's is a Debian installer).
local booted = dev:wait_text("installer", { timeout = 60 })
print("booted the image: " .. booted.line)

-- On the simulator, check what the firmware kept.
local ok, state = pcall(dev.sim_state, dev)
if ok and state.machine then
  local order = state.machine.bootOrder
  print("firmware boot order: " .. table.concat(order, ", "))
  if not order[1]:find("NanoKVM Virtual", 1, true) then error("the virtual media is not first: " .. order[1]) end
  if state.machine.scene ~= "installer" then error("the machine did not boot the image: " .. state.machine.scene) end
end
