-- The installation of install_from_iso.lua driven by openQA needles instead of OCR: wait for a
-- screen (dev:wait_screen, openQA's assert_screen), click what a needle points at (dev:click_on,
-- assert_and_click), press a key until a needle matches (send_key_until_needlematch).
-- Run: scripts/kvmlua --sim scripts/examples/install_with_needles.lua [image]
-- The needles are needles/*.json + *.png next to this script, made from the simulator's
-- screens at 1280x720 by needles/make_needles.lua (a needle is for one resolution: for real
-- hardware make your own the same way, in the REPL, from dev:screenshot()).
local dev = dev or kvm.connect()
local here = arg[0]:match("^(.*)/") or "."
local needles = kvm.needle.load(here .. "/needles")
local function tagged(tag)
  local list = needles:tagged(tag)
  if #list == 0 then error("no needle tagged " .. tag .. " in " .. here .. "/needles") end
  return list
end

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

local image = arg[1] or dev.storage:images()[1]
if not image then error("no image on the device to install from") end
-- Firmware before 2.2.1 cannot present a CD-ROM: the image becomes a USB disk instead.
local mounted, err = pcall(dev.storage.mount, dev.storage, image, { cdrom = true })
if not mounted then
  if getmetatable(err) ~= kvm.Error or err.kind ~= "unsupported" then error(err, 0) end
  dev.storage:mount(image)
end
print(("mounted %s as %s"):format(image, mounted and "CD-ROM" or "USB disk"))

if dev:is_on() then dev:reset() else dev:power_on() end
-- F12 before the POST's window opens is lost: press it until the boot menu shows.
key_until_match(tagged("boot-menu"), "F12", 0.3, 60)
print("boot menu")
local entry = key_until_match(tagged("boot-menu-virtual-media"), "down", 2, 20)
print(("virtual media selected (%.0f%%)"):format(entry.similarity))
dev:key("enter")

local menu = dev:wait_screen(tagged("installer-menu"), { timeout = 60 })
print(("installer menu (%.0f%%)"):format(menu.similarity))
dev:key("enter")   -- Install is highlighted (the needle says so)
local yes = dev:click_on(tagged("installer-write-changes"), { timeout = 60 })
print(("%s matched (%.0f%%); clicked Yes at x=%.3f y=%.3f"):format(yes.name, yes.similarity, yes.click_x, yes.click_y))

-- A real installation takes minutes; the simulated one two seconds.
local done = dev:wait_screen(tagged("installer-complete"), { timeout = 1800 })
print(("%s matched (%.0f%%)"):format(done.name, done.similarity))
dev.storage:unmount()   -- "Remove the installation media"
dev:click_on(done.needle, { timeout = 10 })
-- The click answered the dialog when the screen it was on goes away.
local deadline = kvm.now() + 10
while dev:find(done.needle) do
  if kvm.now() > deadline then error("the Continue click did not close the installer's last dialog") end
  dev:wait_change { timeout = 10, learn = false }
end
print("clicked Continue; the machine reboots")

local ok, state = pcall(dev.sim_state, dev)
if ok and state.machine then
  print("scene: " .. state.machine.scene)
  if state.machine.scene == "installed" or state.machine.scene:find("^installer") then
    error("the clicks did not finish the installer: " .. state.machine.scene)
  end
end
