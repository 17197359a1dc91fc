-- Every Device method against the simulator, in the generation given as arg[1].
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require("support")
local legacy = t.generation == "legacy"
local dev = t.sim()

-- Calls that 2.0.9 firmware lacks: `unsupported`, raised before anything is sent.
local function newer(fn)
  if legacy then return t.raises("unsupported", fn) end
  return fn()
end

t.run {
  fields = function()
    t.ok(dev.url:match("^http://127%.0%.0%.1:%d+$"), "url " .. dev.url)
    t.eq(dev.user, "admin", "user")
    t.eq(dev.generation, t.generation, "generation")
    t.eq(dev.version, legacy and "2.0.9" or "2.5.1", "version")
    t.ok(tostring(dev):match("^kvm.Device http://"), "tostring")
  end,

  info = function()
    local info = dev:info()
    t.eq(info.ip, "127.0.0.1", "ip")
    t.eq(info.ips[1], "127.0.0.1", "ips[1]")
    t.eq(info.version, dev.version, "version")
    t.eq(info.mdns, "kvm-1a2b.local", "mdns")
    t.ok(#info.device_key > 0, "device_key")
    t.eq(info.raw[legacy and "firmware" or "application"], dev.version, "raw data untouched")
  end,

  hardware = function()
    local hw = dev:hardware()
    if legacy then t.eq(hw, nil, "hardware on 2.0.9") else t.eq(hw.version, "Alpha", "hardware.version") end
  end,

  power_and_leds = function()
    t.eq(dev:is_on(), true, "simulated host starts on")
    local leds = dev:leds()
    t.eq(leds.power, true, "power LED")
    t.eq(type(leds.hdd), "boolean", "hdd LED")
    dev:power()                       -- a short press turns the host off
    t.eq(dev:is_on(), false, "off after a short press")
    t.eq(dev:power_on{timeout = 5}, true, "power_on presses")
    t.eq(dev:is_on(), true, "on again")
    t.eq(dev:power_on(), false, "power_on does nothing when on")
    t.eq(dev:power_off{force = true, timeout = 5}, true, "forced power_off")
    t.eq(dev:is_on(), false, "off after power_off")
    t.eq(dev:power_off(), false, "power_off does nothing when off")
    dev:power("long")
    dev:power(100)
    dev:reset()
    dev:reset("short")
    t.raises("usage", dev.power, dev, "medium")
    t.raises("usage", dev.reset, dev, -5)
    dev:power_on{timeout = 5}
  end,

  paste = function()
    dev:paste("echo hi\n")
    t.ok(dev:sim_state().console:find("echo hi", 1, true), "pasted text on the console")
    newer(function() dev:paste("hallo", {layout = "de"}) end)   -- layouts came with 2.3.0
    t.raises("usage", dev.paste, dev, "x", {layout = "klingon"})
  end,

  request = function()
    local leds = dev:request("GET", legacy and "/api/vm/gpio/led" or "/api/vm/gpio")
    t.eq(type(leds.pwr), "boolean", "raw data")
    local err = t.raises("api", dev.request, dev, "POST", "/api/vm/gpio", {type = "bogus"})
    t.ok(err.code ~= nil and err.code < 0, "device code")
    t.eq(err.method, "POST", "method")
    t.eq(err.path, "/api/vm/gpio", "path")
    t.eq(err.device, dev.url, "device")
    t.raises("usage", dev.request, dev, "GET", "no-slash")
  end,

  stream_settings = function()
    dev:stream_settings{fps = 20, quality = 60, resolution = 720}
    local state = dev:sim_state()
    t.eq(state.stream.fps, 20, "fps")
    t.eq(state.stream.quality, 60, "quality")
    t.raises("usage", dev.stream_settings, dev, {colour = "red"})
    dev.stream:settings{fps = 30}
    t.eq(dev:sim_state().stream.fps, 30, "fps via dev.stream")
  end,

  screenshot = function()
    dev:power_on{timeout = 5}
    local frame = dev:screenshot()
    t.eq(frame.width, 1280, "width")
    t.eq(frame.height, 720, "height")
    t.ok(frame.size > 1000, "size")
    t.eq(frame:jpeg():sub(1, 2), "\255\216", "JPEG start of image")
    t.raises("usage", dev.screenshot, dev, "shot.gif")
    t.raises("usage", dev.screenshot, dev, {})
  end,

  keyboard_leds = function()
    local leds = newer(function() return dev:keyboard_leds() end)
    if not legacy then t.eq(leds.caps, false, "caps") end
  end,

  storage = function()
    local images = dev.storage:images()
    t.ok(#images >= 3, "images")
    t.eq(dev.storage:mounted(), nil, "nothing mounted")
    dev.storage:mount(images[1])
    t.eq(dev.storage:mounted(), images[1], "mounted")
    dev.storage:unmount()
    t.eq(dev.storage:mounted(), nil, "unmounted")
    newer(function() dev.storage:mount(images[1], {cdrom = true}) end)
    if not legacy then
      t.eq(dev.storage:cdrom(), true, "cdrom mode")
      dev.storage:unmount()
    end
    newer(function() return dev.storage:delete("/data/memtest86.IMG") end)
    if not legacy then t.ok(not table.concat(dev.storage:images(), " "):find("memtest", 1, true), "deleted") end
    newer(function() return dev.storage:download_enabled() end)
    newer(function() return dev.storage:download_status() end)
  end,

  virtual = function()
    local status = dev.virtual:status()
    t.eq(type(status.network), "boolean", "network")
    t.eq(dev.virtual:set("network", false), status.network, "set off: changed when it was on")
    t.eq(dev.virtual:set("network", false), false, "set off again: nothing to change")
    t.eq(dev.virtual:status().network, false, "off")
    t.eq(dev.virtual:toggle("network"), true, "toggled on")
    t.raises("usage", dev.virtual.set, dev.virtual, "printer", true)
  end,

  hid = function()
    dev.hid:reset()
    local mode = newer(function() return dev.hid:mode() end)
    if not legacy then
      t.eq(mode, "normal", "mode")
      dev.hid:set_mode("normal")    -- same mode: no reboot
      dev.hid:add_shortcut{"ControlLeft", "AltLeft", "Delete"}
      local shortcuts = dev.hid:shortcuts()
      t.eq(#shortcuts, 1, "one shortcut")
      t.eq(shortcuts[1].keys[3].code, "Delete", "third key")
      dev.hid:delete_shortcut(shortcuts[1].id)
      t.eq(#dev.hid:shortcuts(), 0, "deleted")
      dev.hid:set_leader_key("ShiftRight")
      t.eq(dev.hid:leader_key(), "ShiftRight", "leader key")
      dev.hid:set_leader_key(nil)
    end
    t.raises("usage", dev.hid.set_mode, dev.hid, "fast")
  end,

  stream = function()
    dev.stream:set_detect(true)
    t.eq(dev.stream:detect(), true, "detect on")
    dev.stream:set_detect(false)
    t.eq(dev.stream:detect(), false, "detect off")
  end,

  network = function()
    dev.network:wake("aa-bb-cc-dd-ee-01")
    local found = false
    for _, target in ipairs(dev.network:wake_targets()) do
      if target.mac == "AA:BB:CC:DD:EE:01" then found = true end
    end
    t.ok(found, "woken MAC in the history")
    newer(function() return dev.network:wifi() end)
    local dns = newer(function() return dev.network:dns() end)
    if not legacy then
      t.eq(dns.mode, "dhcp", "dns mode")
      dev.network:set_dns("manual", {"9.9.9.9"})
      t.eq(dev.network:dns().servers[1], "9.9.9.9", "manual dns")
    end
  end,

  system = function()
    local name = newer(function() return dev.system:hostname() end)
    if not legacy then
      dev.system:set_hostname("lab-kvm")
      t.eq(dev.system:hostname(), "lab-kvm", "hostname")
      t.eq(dev.system:web_title(), "NanoKVM", "default title")
      dev.system:set_web_title("Rack 3")
      t.eq(dev.system:web_title(), "Rack 3", "title")
      t.eq(type(dev.system:ssh()), "boolean", "ssh")
      t.eq(type(dev.system:mdns()), "boolean", "mdns")
      t.eq(dev.system:oled().present, true, "oled")
      t.eq(dev.system:swap(), 0, "swap")
      t.eq(type(dev.system:memory_limit().enabled), "boolean", "memory limit")
      t.eq(dev.system:hdmi().enabled, true, "hdmi")
      dev.system:set_mouse_jiggler(true, "absolute")
      t.eq(dev.system:mouse_jiggler().mode, "absolute", "jiggler")
      dev.system:set_mouse_jiggler(false)
      t.eq(dev.system:preview(), false, "preview channel")
    end
    t.raises("api", dev.system.versions, dev.system)   -- the simulator is offline, like a device without internet
  end,

  scripts = function()
    dev.scripts:upload("hello.sh", "echo hello")
    t.eq(dev.scripts:list()[1], "hello.sh", "uploaded")
    dev.scripts:delete("hello.sh")
    t.eq(#dev.scripts:list(), 0, "deleted")
  end,

  tailscale = function()
    t.eq(dev.tailscale:status().state, "notInstall", "tailscale state")
  end,

  auth = function()
    local account = newer(function() return dev.auth:account() end)
    if not legacy then
      t.eq(account.username, "admin", "account")
      t.eq(dev.auth:users()[1].username, "admin", "users")
    end
  end,

  close = function()
    local other = t.sim()
    other:close()
    t.raises("usage", other.info, other)
  end,
}
