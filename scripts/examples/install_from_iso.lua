-- Install from an image: mount it as CD-ROM, reset the machine, open the boot menu (F12), pick
-- the virtual CD-ROM, start the installer, answer "Write the changes to disks?" by clicking its
-- Yes button, wait for the installation to finish, remove the image and reboot into the disk.
-- Run: scripts/kvmlua --sim scripts/examples/install_from_iso.lua [image]
-- The screens are recognised by their text (OCR: dev:wait_text, dev:click_text); which boot
-- menu entry is highlighted only its colour tells, so that is a needle
-- (needles/boot-menu-virtual-media.json, made by needles/make_needles.lua on the simulator at
-- 1280x720). install_with_needles.lua does the whole installation with needles.
local dev = dev or kvm.connect()
local here = arg[0]:match("^(.*)/") or "."
local needles = kvm.needle.load(here .. "/needles")

-- The middle of the screen, where the installer's dialogs are: reading only there keeps the
-- dialog's lines apart from the screen's title and help lines, and "block" reads them in order.
local dialog = { area = { x = 0.15, y = 0.28, w = 0.7, h = 0.42 }, mode = "block" }
local function in_dialog(opts)
  for k, v in pairs(dialog) do opts[k] = v end
  return opts
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
-- F12 before the POST's "F12 for Boot Menu" window opens is lost: press it every 0.2 s until
-- the menu's help line shows.
dev:wait_text("to select boot device", { press = "F12", timeout = 60 })
print("boot menu")
-- The cursor starts on the first entry: down until the virtual media is highlighted.
key_until_match(needles:tagged("boot-menu-virtual-media"), "down", 2, 20)
dev:key("enter")

dev:wait_text("installer menu", { timeout = 60 })
dev:key("enter")   -- the first entry, Install
dev:wait_text("changes to disks", in_dialog { timeout = 60 })
-- The selected button is white on red, which OCR does not read reliably yet (the other one,
-- black on grey, it does): Tab moves the selection to No, then Yes reads like any text.
dev:key("tab")
local yes = dev:click_text("Yes", in_dialog { timeout = 10 })
print(("clicked %q at x=%.3f y=%.3f"):format(yes.text, yes.x + yes.w / 2, yes.y + yes.h / 2))

-- A real installation takes minutes; the simulated one two seconds.
dev:wait_text("Installation is complete", in_dialog { timeout = 1800 })
print("installed")
dev.storage:unmount()   -- "Remove the installation media"
dev:key("enter")        -- Continue, the dialog's only button
-- The proof: the machine reboots into the installed system's boot loader.
local grub = dev:wait_text("GNU GRUB", { timeout = 60 })
print("rebooted into the disk: " .. grub.line)

-- On the simulator, check where the machine is.
local ok, state = pcall(dev.sim_state, dev)
if ok and state.machine then
  print("scene: " .. state.machine.scene)
  if state.machine.scene ~= "grub" and state.machine.scene ~= "kernel" and state.machine.scene ~= "login" then
    error("the machine did not boot the installed disk: " .. state.machine.scene)
  end
end
