-- Macros: recording, playback timing, files, importers (generation arg[1]).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require("support")

local function typed(dev, expected)
  local text
  t.eventually(function()
    text = dev:sim_state().transcript:match("login: (.*)$")
    return text == expected
  end)
  return text
end

t.run {
  record_and_replay = function()
    local dev = t.sim()
    local rec = kvm.macro.record(dev)
    dev:type("ls\n", { delay = 0 })
    kvm.sleep(0.05)
    dev:key("ctrl+c")
    dev:click("left", 0.5, 0.5)
    dev:type("hunter2", { secret = true })
    dev:scroll(1)
    local macro = rec:stop()
    t.ok(#macro >= 5, "steps recorded: " .. #macro)
    t.ok(not macro:text():find("hunter2", 1, true), "secret text is not recorded")
    t.eq(typed(dev, "ls\nhunter2"), "ls\nhunter2", "typed once")
    macro:play(dev)
    t.eq(typed(dev, "ls\nhunter2ls\n"), "ls\nhunter2ls\n", "replayed")
  end,

  layout_line = function()
    -- A .kvm-macro names its layout in a comment line; opts.layout still wins.
    local dev = t.sim { host_layout = "ch(fr)" }
    dev.layout = "us"
    local macro = kvm.macro.parse("# layout: ch(fr)\n0 type \"@\"\n")
    macro:play(dev)
    t.eq(typed(dev, "@"), "@", "the macro's own layout")
    macro:play(dev, { layout = "us" })
    t.eq(typed(dev, "@\""), "@\"", "opts.layout over the macro's")
    t.raises("usage", function() kvm.macro.parse("# layout: klingon\n0 type \"a\"\n"):play(dev) end)
    dev:close()
  end,

  recorded_layout = function()
    -- A recording names the layout of its type steps, so another machine (another default
    -- layout) plays the same keys.
    local dev = t.sim { host_layout = "ch(fr)" }
    dev.layout = "ch(fr)"
    local rec = kvm.macro.record(dev)
    dev:type("@", { delay = 0 })
    local macro = rec:stop()
    t.eq(macro:text():match("^[^\n]*"), "# layout: ch(fr)", "header line")
    t.eq(typed(dev, "@"), "@", "typed")
    local back = kvm.macro.parse(macro:text())
    dev.layout = "us"
    back:play(dev)
    t.eq(typed(dev, "@@"), "@@", "played with the recorded layout, not dev.layout")
    -- Only keys: the device's layout at the time.
    rec = kvm.macro.record(dev)
    dev:key("KeyA")
    t.eq(rec:stop():text():match("^[^\n]*"), "# layout: us", "no type step: dev.layout")
    dev:close()
  end,

  speed_halves_the_span = function()
    local dev = t.sim()
    local macro = kvm.macro.parse("0 key KeyA\n0.4 key KeyB\n0.8 key KeyC\n")
    local t0 = kvm.now()
    macro:play(dev)
    local normal = kvm.now() - t0
    t0 = kvm.now()
    macro:play(dev, { speed = 2 })
    local fast = kvm.now() - t0
    t.ok(normal >= 0.79 and normal < 1.2, "normal span " .. normal)
    t.ok(fast >= 0.39 and fast < 0.7, "speed 2 span " .. fast)
    t.eq(typed(dev, "abcabc"), "abcabc", "keys")
    macro:play(dev, { loops = 2, speed = 10 })
    t.eq(typed(dev, "abcabcabcabc"), "abcabcabcabc", "loops")
  end,

  files = function()
    local macro = kvm.macro.parse("# demo\n0 type \"hi\\n\"\n0.5 key enter # confirm\n")
    macro:save("demo.kvm-macro")
    local back = kvm.macro.load("demo.kvm-macro")
    t.eq(back:text(), macro:text(), "round trip")
    t.eq(io.open("demo.kvm-macro"):read("a"), "# demo\n0 type \"hi\\n\"\n0.5 key enter # confirm\n", "file text")
    t.eq(#back, 2, "steps")
    t.eq(back:duration(), 0.5, "duration")
    local err = t.raises("usage", kvm.macro.parse, "0 key enter\n0.1 key nosuchkey\n")
    t.ok(err.msg:find(":2:", 1, true), "line number: " .. err.msg)
    t.raises("usage", kvm.macro.load, "missing.kvm-macro")
  end,

  importers = function()
    local dev = t.sim()
    local pikvm = kvm.macro.import_pikvm([[
      [{"event_type": "key", "event": {"key": "KeyX", "state": true}},
       {"event_type": "delay", "event": {"millis": 50}},
       {"event_type": "key", "event": {"key": "KeyX", "state": false}},
       {"event_type": "print", "event": {"text": "yz"}}]
    ]])
    t.eq(#pikvm, 3, "PiKVM steps")
    pikvm:play(dev)
    local ducky = kvm.macro.import_ducky("REM demo\nSTRING hello\nENTER\n", { key_delay = 0.01 })
    ducky:play(dev)
    t.eq(typed(dev, "xyzhello\n"), "xyzhello\n", "imported macros play")
    t.raises("usage", kvm.macro.import_ducky, "ATTACKMODE HID\n")
  end,

  play_errors_release_everything = function()
    local dev = t.sim()
    local macro = kvm.macro.parse("0 key_down shift\n0 mouse_down left\n5 key_up shift\n")
    local task = kvm.spawn(function() macro:play(dev) end)
    kvm.sleep(0.3)
    task:cancel()
    t.raises("cancelled", task.wait, task)
    t.ok(t.eventually(function()
      local s = dev:sim_state()
      return s.keyboard.modifiers == 0 and s.mouse.buttons == 0
    end), "shift and the button were released")
  end,
}
