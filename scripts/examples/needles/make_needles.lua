-- Makes the needles next to this script (openQA's format: name.json + name.png) from the
-- simulated machine's screens, the way one makes a needle by hand in the REPL:
--   kvm.needle.save(dev:screenshot(), "needles/name", { areas = {...}, tags = {...} })
-- Run: scripts/kvmlua scripts/examples/needles/make_needles.lua [output folder]
-- Each needle comes from a fresh simulator (1280x720, current firmware, no delays, a fixed
-- clock) started at the screen it shows, with the stream at JPEG quality 100 (a clean picture,
-- and a PNG a third the size); each is checked against the frame it came from.
-- Needles are for one resolution: these match the simulator at 1280x720 only.
local out = arg[1] or (arg[0]:match("^(.*)/") or ".")
-- The setup screen's clock in the PNG reads 12/03/2026 13:26:51; the needle excludes it.
local clock = 1796304411

local function machine(scene)
  local dev = kvm.sim { scene = scene, time_scale = 0, clock = clock }
  dev:stream_settings { quality = 100 }
  return dev
end

-- Waits until the simulated machine shows `scene` (with `selection` highlighted, when given)
-- and the stream has been still for a moment; returns that frame.
local function settled(dev, scene, selection)
  local deadline = kvm.now() + 10
  while true do
    local machine = dev:sim_state().machine
    if machine.scene == scene and (not selection or (machine.selection or ""):find(selection, 1, true)) then break end
    if kvm.now() > deadline then
      error(("the simulator shows %s (%s), expected %s (%s)"):format(machine.scene, tostring(machine.selection), scene, tostring(selection)))
    end
    kvm.sleep(0.05)   -- polls the simulator's own state, not the screen
  end
  return dev:wait_still { seconds = 0.3, learn = false } or dev:screenshot()
end

-- An area in text cells (row, column from 0; the sizes in cells) as openQA's pixel fields, on the
-- simulator's text grid; `expect` must be on the screen inside those rows (the layout is
-- Machine.swift's: if it moves, this fails instead of writing a needle of the wrong spot).
local function cells(dev, spec)
  local screen = dev:sim_state().screen
  local w, h = screen.cellWidth, screen.cellHeight
  local top = screen.lines[1]
  local origin_x = top.x - #top.text:match("^ *") * w
  local origin_y = top.y - top.row * h
  if spec.expect then
    local seen = false
    for _, line in ipairs(screen.lines) do
      if line.row >= spec.row and line.row < spec.row + spec.rows and line.text:find(spec.expect, 1, true) then seen = true end
    end
    if not seen then error(("%q is not in rows %d-%d"):format(spec.expect, spec.row, spec.row + spec.rows - 1)) end
  end
  return {
    xpos = origin_x + spec.column * w, ypos = origin_y + spec.row * h, width = spec.columns * w, height = spec.rows * h,
    type = spec.type, match = spec.match, margin = spec.margin, click_point = spec.click_point,
  }
end

local function save(dev, frame, name, areas, tags)
  local needle = kvm.needle.save(frame, out .. "/" .. name, { areas = areas, tags = tags })
  local match, why = frame:match(needle)
  if not match then error(name .. " does not match the frame it was made from: " .. why) end
  print(("%s: %d areas, tags %s"):format(needle.path, #needle.areas, table.concat(needle.tags, ", ")))
end

-- Firmware setup on the Boot tab. OCR reads the tab names but not which one is highlighted:
-- the needle sees the colours. The clock in the header ticks, so it is excluded; a slightly
-- lower match and a small margin, because the header never moves.
do
  local dev = machine("bios")
  dev:key("right", "right")
  local frame = settled(dev, "bios", "Boot Option #1")
  save(dev, frame, "bios-boot-tab", {
    cells(dev, { row = 0, column = 0, columns = 80, rows = 2, match = 95, margin = 20, expect = "Boot" }),
    cells(dev, { row = 0, column = 56, columns = 24, rows = 1, type = "exclude", expect = "13:26:51" }),
  }, { "bios", "bios-boot-tab" })
  dev:close()
end

-- The boot menu (F12): its title, and the virtual media highlighted (the menu starts on the
-- first entry, the hard disk). The entry's label ends in CD-ROM or Disk depending on how the
-- image is mounted: the needle covers only the words both have.
do
  local dev = machine("bootmenu")
  dev.storage:mount(dev.storage:images()[1], { cdrom = true })
  local frame = settled(dev, "bootmenu", "Hard Disk")
  save(dev, frame, "boot-menu", {
    cells(dev, { row = 6, column = 18, columns = 44, rows = 1, expect = "Please select boot device:" }),
  }, { "boot-menu" })
  dev:key("down")
  frame = settled(dev, "bootmenu", "NanoKVM Virtual")
  save(dev, frame, "boot-menu-virtual-media", {
    cells(dev, { row = 9, column = 20, columns = 17, rows = 1, expect = "NanoKVM Virtual" }),
  }, { "boot-menu", "boot-menu-virtual-media" })
  dev:close()
end

-- The installer: its menu with Install highlighted, the "Write the changes to disks?" dialog
-- with its Yes button to click, and the last dialog with Continue. The mouse pointer sits in
-- the middle of the screen until something moves it, so no area covers the middle rows.
do
  local dev = machine("installer")
  local frame = settled(dev, "installer", "Install")
  save(dev, frame, "installer-menu", {
    cells(dev, { row = 7, column = 14, columns = 52, rows = 3, expect = "installer menu" }),
  }, { "installer", "installer-menu" })

  dev:key("enter")
  frame = settled(dev, "installer-dialog", "Yes")
  save(dev, frame, "installer-write-changes", {
    cells(dev, { row = 7, column = 12, columns = 56, rows = 4, expect = "Partition disks" }),
    cells(dev, { row = 15, column = 26, columns = 7, rows = 1, click_point = "center", expect = "< Yes >" }),
  }, { "installer", "installer-write-changes" })

  -- Clicks Yes through the needle just made, as a script would.
  dev:click_on(kvm.needle.load(out .. "/installer-write-changes.json"), { timeout = 5 })
  frame = settled(dev, "installed")
  save(dev, frame, "installer-complete", {
    cells(dev, { row = 7, column = 12, columns = 56, rows = 4, expect = "Installation is complete" }),
    cells(dev, { row = 15, column = 35, columns = 10, rows = 1, click_point = "center", expect = "<Continue>" }),
  }, { "installer", "installer-complete" })
  dev:close()
end
