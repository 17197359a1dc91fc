-- Reading the screen from Lua: OCR, waiting for and clicking text, needles, waits that ignore
-- regions, against the simulator (generation arg[1]).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require("support")
local dev = t.sim()
local dir = os.getenv("KVMLUA_TEST_TMP") or "."

t.run {
  ocr = function()
    local r = dev:ocr()
    t.ok(r.text:lower():find("login:", 1, true), "the banner's login prompt is read: " .. r.text)
    t.ok(#r.lines >= 2, "lines")
    local word
    for _, w in ipairs(r.words) do if w.text:lower() == "login:" then word = w end end
    t.ok(word, "the word login:")
    t.ok(word.x > 0 and word.x < 0.3 and word.y > 0 and word.y < 0.1 and word.w > 0 and word.h > 0, "box in fractions")
    t.eq(word.y_px, math.floor(word.y * 720 + 0.5), "pixel box")
    local f = dev:screenshot()
    local top = f:ocr { area = { x = 0, y = 0, w = 0.5, h = 0.03 }, mode = "line" }
    t.ok(top.text:find("host (kvmlua", 1, true), "area + line mode: " .. top.text)
    t.raises("usage", dev.ocr, dev, { mode = "page" })
    t.raises("usage", dev.ocr, dev, { lang = "xyz" })
  end,

  wait_text = function()
    local m = dev:wait_text("LOGIN:", { timeout = 10 })
    t.eq(m.text:lower(), "login:", "ignore_case: the text as read")
    t.ok(m.x > 0 and m.y > 0 and m.w > 0 and m.h > 0 and m.frame.width == 1280, "match box and frame")
    local task = kvm.spawn(function() kvm.sleep(0.4); dev:paste("root\nwelcome to kvmlua 42\n") end)
    local n = dev:wait_text("kvmlua (%d+)", { plain = false, timeout = 10 })
    t.eq(n.text, "kvmlua 42", "Lua pattern match")
    task:wait()
    local err = t.raises("timeout", dev.wait_text, dev, "no such text", { timeout = 0.8 })
    t.ok(tostring(err):find("welcome to kvmlua 42", 1, true), "the timeout quotes the text last read: " .. tostring(err))
    t.raises("usage", dev.wait_text, dev, 42)
    t.raises("usage", dev.wait_text, dev, "x", { press = "nokey" })
  end,

  find_text = function()
    local m = dev:find_text("login:")
    t.ok(m and m.line:lower():find("sim", 1, true), "found in the current frame: " .. tostring(m and m.line))
    local none, msg = dev:find_text("absent words")
    t.eq(none, nil, "nil when absent")
    t.ok(msg:lower():find("login", 1, true), "the message has the text read: " .. msg)
    -- One character off (as OCR misreads m/n): found with max_errors, with the text as read.
    t.eq(dev:find_text("logim:"), nil, "no exact match")
    local near = dev:find_text("logim:", { max_errors = 1 })
    t.eq(near and near.text:lower(), "login:", "max_errors = 1: the text read there")
    t.eq(dev:find_text("lxgim:", { max_errors = 1 }), nil, "two characters off is not within one")
    local err = t.raises("usage", dev.find_text, dev, "abc", { max_errors = 3 })
    t.ok(tostring(err):find("bad argument #2 to 'dev:find_text'", 1, true), "the error names the public function: " .. tostring(err))
    t.raises("usage", dev.wait_text, dev, "abc", { max_errors = 1, plain = false })
    t.raises("usage", dev.wait_text, dev, "abc", { max_errors = 0.5 })
  end,

  click_text = function()
    local m = dev:click_text("simulated", { timeout = 10 })
    local mouse = t.eventually(function()
      local s = dev:sim_state().mouse
      return s.pointer.x > 0 and s
    end)
    local cx, cy = (m.x + m.w / 2) * 1280, (m.y + m.h / 2) * 720
    t.ok(math.abs(mouse.pointer.x - cx) <= 8 and math.abs(mouse.pointer.y - cy) <= 8,
      string.format("clicked at the centre (%d,%d) vs (%.0f,%.0f)", mouse.pointer.x, mouse.pointer.y, cx, cy))
  end,

  press_while_waiting = function()
    -- The key is pressed every 0.1 s until the text shows up (a BIOS key during POST).
    local before = dev:sim_state().reportCount
    kvm.spawn(function() kvm.sleep(0.8); dev:paste("setup utility ready\n") end)
    dev:wait_text("utility ready", { press = "f2", every = 0.1, timeout = 10 })
    t.ok(dev:sim_state().reportCount - before >= 8, "f2 pressed repeatedly while waiting")
  end,

  needles = function()
    os.execute("mkdir -p '" .. dir .. "/needles'")
    local base = dir
    local dir = dir .. "/needles"
    local f = dev:screenshot()
    local needle = kvm.needle.save(f, dir .. "/banner", {
      areas = { { x = 0, y = 0, w = 0.28, h = 0.025, click_point = "center" } }, tags = { "console", "banner" } })
    t.eq(needle.name, "banner", "name")
    local loaded = kvm.needle.load(dir .. "/banner.json")
    t.eq(loaded.tags[2], "banner", "tags")
    t.eq(loaded.areas[1].match, 96, "default match")
    local list = kvm.needle.load(dir)
    t.ok(#list >= 1 and #list:tagged("banner") == 1 and #list:tagged("nothing") == 0, "directory list and tagged")
    local m = f:match(loaded)
    t.ok(m and m.similarity >= 99 and m.x_px == 0 and m.y_px == 0, "matches the frame it came from")
    local found = dev:find(list:tagged("banner"))
    t.ok(found and found.name == "banner", "dev:find")
    local w = dev:wait_screen(loaded, { timeout = 5 })
    t.ok(w.frame and w.similarity >= 96, "wait_screen")
    local c = dev:click_on({ loaded }, { timeout = 5 })
    t.ok(math.abs(c.click_x - (c.x + c.w / 2)) < 0.01, "click_on clicks the centre")
    local io_ok = io.open(base .. "/bad.json", "w")
    io_ok:write("{ not json")
    io_ok:close()
    local err = t.raises("usage", kvm.needle.load, base .. "/bad.json")
    t.ok(tostring(err):find("bad.json", 1, true), "names the file")
  end,

  wait_change_ignores = function()
    -- Typing inside an ignored area is no change; outside it is.
    dev:screenshot()
    local task = kvm.spawn(function() kvm.sleep(0.3); dev:paste("x") end)
    t.raises("timeout", dev.wait_change, dev, { timeout = 1.2, ignore = { { x = 0, y = 0, w = 1, h = 0.5 } } })
    task:wait()
    local later = kvm.spawn(function() kvm.sleep(0.3); dev:paste("y") end)
    local frame, ignored = dev:wait_change { timeout = 5 }
    t.ok(frame and type(ignored) == "table", "frame and the ignored regions")
    later:wait()
  end,
}
