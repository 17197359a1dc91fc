-- Reading the booting machine's firmware from Lua (issue 13): Delete pressed every 0.2 s by
-- wait_text reaches the setup during POST's window, and the highlighted tab row is read whole.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require("support")
-- Real timings (POST's window is 3 s at time_scale 1): the presses must land inside it.
local dev = t.sim { scene = "machine", time_scale = 1 }

t.run {
  delete_during_post_reaches_setup = function()
    local started = kvm.now()
    local m = dev:wait_text("Setup Utility", { press = "delete", timeout = 30 })
    t.ok(m.y < 0.1, "the title bar's text, at the top: y=" .. m.y)
    t.ok(kvm.now() - started < 15, "reached during POST's window")
    t.eq(dev:sim_state().scene, "bios", "the simulator is in its setup")
  end,

  tab_row_is_read_whole = function()
    local boot = dev:wait_text("Boot", { timeout = 10 })
    t.ok(boot.y < 0.1 and boot.x > 0.1 and boot.x < 0.5, "the Boot tab in the tab row: " .. boot.x .. "," .. boot.y)
    local text = dev:ocr().text
    t.ok(text:find("Main Advanced Boot Save & Exit", 1, true), "every tab, the highlighted one included: " .. text)
  end,
}
