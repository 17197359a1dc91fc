-- Helpers for the Lua-level tests: run by kvmlua itself (Tests/kvmluaTests/LuaSuites.swift
-- runs every Tests/lua/*_test.lua for each simulator generation).
local support = {}

support.generation = arg and arg[1] or "current"
support.failures = 0

function support.sim(opts)
  opts = opts or {}
  opts.generation = opts.generation or support.generation
  if opts.time_scale == nil then opts.time_scale = 0 end
  if opts.login_delay_scale == nil then opts.login_delay_scale = 0 end
  return kvm.sim(opts)
end

local function describe(v)
  if type(v) == "table" and getmetatable(v) ~= kvm.Error then return kvm.json.encode(v) end
  return tostring(v)
end

function support.eq(actual, expected, what)
  if actual ~= expected then
    error(string.format("%s: expected %s, got %s", what or "value", describe(expected), describe(actual)), 2)
  end
end

function support.ok(value, what)
  if not value then error((what or "condition") .. " is not true", 2) end
  return value
end

-- The device acts on reports a moment after they are written: polls `fn` until it returns a
-- true value (its value), up to `seconds` (default 3); the last value otherwise.
function support.eventually(fn, seconds)
  local deadline = kvm.now() + (seconds or 3)
  local value = fn()
  while not value and kvm.now() < deadline do
    kvm.sleep(0.02)
    value = fn()
  end
  return value
end

-- Calls fn and returns the kvm.Error it raises; fails when it does not raise one of `kind`.
function support.raises(kind, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected a '" .. kind .. "' error, but the call succeeded", 2) end
  if getmetatable(err) ~= kvm.Error then error("expected a kvm.Error, got " .. describe(err), 2) end
  if err.kind ~= kind then error("expected kind '" .. kind .. "', got '" .. tostring(err.kind) .. "': " .. tostring(err), 2) end
  return err
end

-- Runs each named case; reports every failure, exits 1 if any failed, prints "ok" at the end.
function support.run(cases)
  local names = {}
  for name in pairs(cases) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local ok, err = xpcall(cases[name], debug.traceback)
    if not ok then
      support.failures = support.failures + 1
      io.stderr:write("FAIL ", support.generation, " ", name, ": ", tostring(err), "\n")
    end
  end
  if support.failures > 0 then os.exit(1) end
  print("ok")
end

return support
