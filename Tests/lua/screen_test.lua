-- Screen: frames, screenshots, waits, recording, against the simulator (generation arg[1]).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require("support")
local dev = t.sim()
local dir = os.getenv("KVMLUA_TEST_TMP") or "."

t.run {
  screenshot = function()
    local f = dev:screenshot(dir .. "/shot.jpg")
    t.eq(f.width, 1280, "width")
    t.eq(f.height, 720, "height")
    t.ok(f.time > 0 and f.time <= kvm.now(), "time")
    local saved = io.open(dir .. "/shot.jpg", "rb"):read("a")
    t.eq(#saved, f.size, "saved as received")
    dev:screenshot(dir .. "/shot.png")
    t.eq(io.open(dir .. "/shot.png", "rb"):read(8), "\137PNG\r\n\26\n", "PNG signature")
    t.raises("usage", dev.screenshot, dev, dir .. "/shot.bmp")
  end,

  frame_methods = function()
    local f = dev:screenshot()
    local r, g, b = f:pixel(0, 0)
    t.ok(r and g and b, "pixel")
    t.raises("usage", f.pixel, f, 5000, 0)
    local half = f:crop(0.5, 0.5, 0.5, 0.5)
    t.eq(half.width, 640, "cropped width")
    t.eq(half.height, 360, "cropped height")
    t.eq(f:diff(f), 0, "a frame equals itself")
    t.eq(f:diff(half), 1, "different sizes differ entirely")
    t.raises("usage", f.crop, f, 0.5, 0.5, 0.6, 0.1)
    t.eq(f:jpeg():sub(1, 2), "\255\216", "JPEG bytes")
  end,

  frames_iterator = function()
    local n = 0
    for frame in dev:frames { count = 3 } do
      n = n + 1
      t.eq(frame.width, 1280, "frame width")
    end
    t.eq(n, 3, "count")
    for _ in dev:frames() do break end   -- leaving early closes the subscription
  end,

  wait_change_and_still = function()
    dev:wait_still { seconds = 0.3, timeout = 10 }
    local before = dev:screenshot()
    local waiter = kvm.spawn(function() return dev:wait_change { timeout = 10 } end)
    kvm.sleep(0.2)
    dev:paste("x")
    local after = waiter:wait()
    t.ok(after:diff(before) > 0, "the new frame differs")
    dev:wait_still { seconds = 0.3 }
    t.raises("timeout", dev.wait_change, dev, { timeout = 0.4 })
    -- Only the top-right corner: typing at the top left does not count there.
    local corner = kvm.spawn(function() return dev:wait_change { area = { 0.8, 0.8, 0.2, 0.2 }, timeout = 1 } end)
    kvm.sleep(0.1)
    dev:paste("y")
    t.raises("timeout", corner.wait, corner)
  end,

  record = function()
    local result = dev:record(dir .. "/clip.avi", { frames = 10 })
    t.eq(result.frames, 10, "frames")
    t.eq(result.path, dir .. "/clip.avi", "path")
    t.eq(io.open(dir .. "/clip.avi", "rb"):read(4), "RIFF", "AVI file")
    t.raises("usage", dev.record, dev, dir .. "/clip.avi", {})
    t.raises("usage", dev.record, dev, dir .. "/clip.gif", { seconds = 1 })
  end,
}
