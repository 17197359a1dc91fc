-- Keyboard and mouse through the WebSocket, against the simulator (generation arg[1]).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require("support")
local legacy = t.generation == "legacy"

-- What reached the simulated host's console, once it has `expected` (or after 3 s).
local function typed(dev, expected)
  local text
  t.eventually(function()
    text = dev:sim_state().transcript:match("login: (.*)$")
    return text == expected
  end)
  return text
end

local function keyboard(dev) return dev:sim_state().keyboard end

-- Waits until no key, modifier or button is held on the host; returns whether that happened.
local function released(dev)
  return t.eventually(function()
    local state = dev:sim_state()
    return next(state.keyboard.pressed) == nil and state.keyboard.modifiers == 0 and state.mouse.buttons == 0
  end) and true or false
end

t.run {
  type_exact_text = function()
    local dev = t.sim()
    local text = "Hello, World! 0123456789 ~!@#$%^&*()_+{}|:\"<>? `-=[]\\;',./\n\tdone"
    dev:type(text, { delay = 0 })
    t.eq(typed(dev, text), text, "typed text")
    t.raises("usage", dev.type, dev, "π")
  end,

  layouts = function()
    for _, layout in ipairs({ "uk", "de", "fr" }) do
      local dev = t.sim { host_layout = layout }
      local text = ({ uk = "£ # ~ @ \"", de = "Grüße ß ^ é ê @ € {}", fr = "àéèçù € ê ^ @" })[layout]
      dev:type(text, { layout = layout, delay = 0 })
      t.eq(typed(dev, text), text, layout .. " text")
      dev:close()
    end
  end,

  xkb_layouts = function()
    local list = kvm.layouts()
    t.ok(#list > 100, "kvm.layouts() lists xkb-data's layouts")
    local swiss
    for _, entry in ipairs(list) do
      if entry.name == "ch" and entry.variant == "fr" then swiss = entry end
    end
    t.ok(swiss and swiss.description:match("Switzerland"), "ch(fr) is listed with its description")
    local dev = t.sim { host_layout = "ch(fr)" }
    t.eq(dev.layout, "ch(fr)", "dev.layout follows host_layout")
    -- The Swiss AltGr characters (NanoKVM #85) and dead keys, with the device's layout.
    local text = "@#\\|{}[]~ é à è ç ê ë ñ"
    dev:type(text, { delay = 0 })
    t.eq(typed(dev, text), text, "ch(fr) text")
    dev.layout = "us"
    t.eq(dev.layout, "us", "dev.layout set by the script")
    local err = t.raises("usage", dev.type, dev, "é")
    t.ok(tostring(err):match("ch%(fr%)"), "the error names a layout that could type it: " .. tostring(err))
    -- A wrong layout is visible on the host: us's `@` (Shift+2) is `"` on ch(fr).
    dev:type("@", { delay = 0 })
    t.eq(typed(dev, text .. "\""), text .. "\"", "us @ on a ch(fr) host")
    t.raises("usage", function() dev.layout = "klingon" end)
    t.raises("usage", function() dev.no_such_field = 1 end)
    t.raises("usage", dev.type, dev, "x", { layout = "ch(nope)" })
    dev.layout = nil
    t.eq(dev.layout, "us", "back to the default")
    dev:close()
  end,

  keys_and_chords = function()
    local dev = t.sim()
    dev:key("ctrl+alt+delete")
    t.ok(released(dev), "ctrl+alt+delete released")
    dev:key_down("shift")
    t.ok(t.eventually(function() return keyboard(dev).modifiers == 2 end), "left shift held")
    dev:key_up("shift")
    t.ok(released(dev), "shift released")
    t.raises("usage", dev.key, dev, "ctrl+nosuchkey")
    t.raises("usage", dev.key, dev)
    dev:key("KeyA", "enter", "shift+F10", "ESC")
    dev:hold("shift", function() dev:type("x", { delay = 0 }) end)
    t.ok(released(dev), "hold released shift")
    local ok = pcall(dev.hold, dev, "ctrl", function() error("inside") end)
    t.eq(ok, false, "the error passes through hold")
    t.ok(released(dev), "released after an error")
    dev:key_down("ctrl")
    dev:release_all()
    t.ok(released(dev), "release_all")
  end,

  mouse = function()
    local dev = t.sim()
    dev:move(0.5, 0.5)
    t.ok(t.eventually(function() return math.abs(dev:sim_state().mouse.pointer.x - 640) <= 1 end), "pointer at the centre")
    dev:move(1, 1)
    dev:move(0, 0)
    dev:move_px(320, 360)
    t.ok(t.eventually(function() return math.abs(dev:sim_state().mouse.pointer.x - 320) <= 1 end), "pixel x")
    dev:move_by(400, -20)
    dev:click()
    dev:click("right", 0.25, 0.75)
    dev:double_click("left")
    dev:mouse_down("middle")
    t.ok(t.eventually(function() return dev:sim_state().mouse.buttons ~= 0 end), "button held")
    dev:mouse_up("middle")
    t.ok(released(dev), "button released")
    dev:drag(0.1, 0.1, 0.3, 0.3, { steps = 3, step_interval = 0 })
    dev:scroll(2)
    dev:scroll(-1, 1)
    t.raises("usage", dev.click, dev, "sideways")
    t.raises("usage", dev.move, dev, 1.5, 0)
    t.raises("usage", dev.click, dev, "left", 0.5)
  end,

  interrupted_typing_releases = function()
    local dev = t.sim()
    local task = kvm.spawn(function() dev:type(string.rep("a", 500), { delay = 0.01 }) end)
    kvm.sleep(0.2)
    task:cancel()
    pcall(task.wait, task)
    t.ok(released(dev), "no key pressed after cancelling")
  end,

  drop_during_typing = function()
    local dev = t.sim()
    local text = string.rep("the quick brown fox ", 10)
    dev:sim_fault("drop_websockets_after", { reports = 40 })
    -- At the default pace. (At delay 0 a report the device never read before it dropped the
    -- connection cannot be told from one it read: the device sends no acknowledgements.)
    dev:type(text)
    t.eq(typed(dev, text), text, "the text survives a dropped WebSocket")
  end,
}
