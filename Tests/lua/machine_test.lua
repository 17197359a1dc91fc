-- kvm.sim's machine options (scene, power, clock, target_*) in the generation given as arg[1].
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require("support")

local function scene(dev) return dev:sim_state().scene end

t.run {
  bios_scene_and_keys = function()
    local dev = t.sim { scene = "bios", clock = 1796304411 }
    t.eq(scene(dev), "bios", "scene")
    t.ok(dev:sim_state().screen.lines[1].text:find("12/03/2026 13:26:51", 1, true), "fixed clock in the header")
    dev:key("right")
    t.ok(t.eventually(function() return dev:sim_state().machine.tab == "Advanced" end), "Right selects the next tab")
    dev:close()
  end,
  login_with_secret = function()
    local dev = t.sim { scene = "login", target_hostname = "box", target_password = "pw-123" }
    t.eq(dev:sim_state().screen.lines[#dev:sim_state().screen.lines].text, "box login:", "prompt")
    dev:type("root\n")
    dev:type("pw-123\n", { secret = true })
    t.ok(t.eventually(function() return scene(dev) == "shell" end), "logged in")
    for _, line in ipairs(dev:sim_state().screen.lines) do
      t.ok(not line.text:find("pw-123", 1, true), "password not on screen")
    end
    dev:close()
  end,
  powered_off_at_start = function()
    local dev = t.sim { scene = "machine", power = false }
    t.eq(scene(dev), "off", "scene")
    t.eq(dev:is_on(), false, "power LED")
    dev:close()
  end,
  bad_scene = function()
    t.raises("usage", kvm.sim, { scene = "windows" })
  end,
}
