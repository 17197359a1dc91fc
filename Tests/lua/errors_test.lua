-- Every kind of kvm.Error, against the simulator in the generation given as arg[1].
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require("support")
local legacy = t.generation == "legacy"
local dev = t.sim { users = { { name = "viewer", password = "viewer-pass", role = "user" } } }

local function shape(err, kind)
  t.eq(getmetatable(err), kvm.Error, "metatable")
  t.eq(err.kind, kind, "kind")
  t.eq(type(err.msg), "string", "msg")
  local line = tostring(err)
  t.ok(line:match("^kvm: "), "one line starting with 'kvm: ': " .. line)
  t.ok(not line:find("\n"), "one line: " .. line)
end

t.run {
  auth = function()
    local err = t.raises("auth", kvm.connect, dev.url, { password = "wrong" })
    shape(err, "auth")
    t.eq(err.device, dev.url, "device")
    t.ok(not tostring(err):find("wrong", 1, true), "the password is not in the message")
  end,

  permission = function()
    if legacy then return end   -- roles exist only on the newest firmware
    local viewer = kvm.connect(dev.url, { user = "viewer", password = "viewer-pass" })
    t.eq(type(viewer:is_on()), "boolean", "a user may read the LEDs")
    local err = t.raises("permission", viewer.storage.images, viewer.storage)
    shape(err, "permission")
    t.eq(err.status, 403, "status")
    viewer:close()
  end,

  api = function()
    local err = t.raises("api", dev.request, dev, "POST", "/api/vm/gpio", { type = "bogus" })
    shape(err, "api")
    t.ok(err.code < 0, "code")
    dev:sim_fault("http500", { path = "/api/vm/gpio" })
    local err500 = t.raises("api", dev.leds, dev)
    t.eq(err500.status, 500, "HTTP 500")
  end,

  transport = function()
    -- A port nothing listens on: take one from a simulator and close it.
    local gone = t.sim()
    local url = gone.url
    gone:close()
    local err = t.raises("transport", kvm.connect, url, { password = "admin" })
    shape(err, "transport")
  end,

  protocol = function()
    dev:sim_fault("malformed_json", { path = "/api/vm/info" })
    shape(t.raises("protocol", dev.info, dev), "protocol")
    dev:sim_fault("not_an_envelope", { path = "/api/vm/info" })
    shape(t.raises("protocol", dev.info, dev), "protocol")
  end,

  timeout = function()
    local slow = kvm.connect(dev.url, { password = "admin", timeout = 0.3 })
    dev:sim_fault("delay", { seconds = 2, path = "/api/vm/info" })
    local started = kvm.now()
    shape(t.raises("timeout", slow.info, slow), "timeout")
    t.ok(kvm.now() - started < 1.5, "gave up after the request timeout")
    shape(t.raises("timeout", kvm.timeout, 0.05, kvm.sleep, 1), "timeout")
  end,

  unsupported = function()
    if legacy then
      local err = t.raises("unsupported", dev.system.hostname, dev.system)
      shape(err, "unsupported")
      t.eq(err.path, "/api/vm/hostname", "path")
    else
      shape(t.raises("unsupported", dev.sim_state, kvm.connect(dev.url, { password = "admin" })), "unsupported")
    end
  end,

  usage = function()
    shape(t.raises("usage", dev.power, dev, "medium"), "usage")
    shape(t.raises("usage", kvm.connect, "http://host/with/path"), "usage")
    shape(t.raises("usage", kvm.sleep, "later"), "usage")
    shape(t.raises("usage", dev.virtual.set, dev.virtual, "printer", true), "usage")
  end,

  cancelled = function()
    dev:sim_fault("delay", { seconds = 2, path = "/api/vm/gpio" })
    local task = kvm.spawn(function() return dev:leds() end)
    kvm.sleep(0.1)
    task:cancel()
    shape(t.raises("cancelled", task.wait, task), "cancelled")
  end,

  unknown_options = function()
    -- A misspelt option is an error naming it and the closest known one, never ignored.
    local before = #dev:sim_state().transcript
    local err = t.raises("usage", dev.type, dev, "x", { dealy = 0.5 })
    shape(err, "usage")
    t.ok(err.msg:find("unknown option 'dealy' (did you mean 'delay'?)", 1, true), err.msg)
    t.eq(#dev:sim_state().transcript, before, "nothing was typed")
    err = t.raises("usage", dev.wait_still, dev, { secnds = 0.2 })
    t.ok(err.msg:find("unknown option 'secnds' (did you mean 'seconds'?)", 1, true), err.msg)
    err = t.raises("usage", kvm.parallel, { 1 }, function() end, { limt = 2 })
    t.ok(err.msg:find("unknown option 'limt' (did you mean 'limit'?)", 1, true), err.msg)
    err = t.raises("usage", dev.power_on, dev, { force = true })   -- force belongs to power_off
    t.ok(err.msg:find("unknown option 'force'", 1, true), err.msg)
    err = t.raises("usage", dev.frames, dev, { 5 })
    t.ok(err.msg:find("unknown option [1]", 1, true), err.msg)
    err = t.raises("usage", kvm.connect, dev.url, { pasword = "admin" })
    t.ok(err.msg:find("did you mean 'password'?", 1, true), err.msg)
    t.ok(not err.msg:find("admin", 1, true), "the value is not quoted")
    err = t.raises("usage", dev.type, dev, "x", { zzzzzz = 1 })
    t.ok(err.msg:find("(options: delay, layout, secret)", 1, true), err.msg)
  end,

  relogin = function()
    local before = dev:sim_state().loginCount
    dev:sim_fault("expire_tokens")
    t.eq(type(dev:info().ip), "string", "the call after a restart succeeds")
    t.eq(dev:sim_state().loginCount, before + 1, "exactly one new login")
  end,
}
