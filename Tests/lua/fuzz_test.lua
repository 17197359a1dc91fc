-- Calls every kvm and Device function with arguments of every wrong type: each call must
-- return or raise a Lua error, never crash the process (the process printing "ok" is the proof).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require("support")
local dev = t.sim()

local values = { "nil", 0, -1, 0.001, 0/0, math.huge, -math.huge, "", "x", string.rep("y", 5000), true, false,
                 {}, { 1, 2 }, { x = {} }, type, coroutine.create(type), io.stdout, kvm.json.null, dev }
local function arg(v) if v == "nil" then return nil end return v end

-- Calls that wait for the screen by design (there are no frames once a fuzzed call has
-- switched the simulated host off): given a short time, a timeout is fine for them.
local waits = { ["dev:screenshot"] = true, ["dev:wait_change"] = true, ["dev:wait_still"] = true,
                ["dev:record"] = true, ["dev:move_px"] = true, ["dev:type"] = true, ["dev:power_on"] = true, ["dev:power_off"] = true,
                ["dev:ocr"] = true, ["dev:wait_text"] = true, ["dev:find_text"] = true, ["dev:click_text"] = true,
                ["dev:find"] = true, ["dev:wait_screen"] = true, ["dev:click_on"] = true }

-- Ends a connection or changes how the rest runs: tested elsewhere.
local skip = { ["dev:live"] = true, ["dev:close"] = true, ["dev:logout"] = true, ["kvm.sim"] = true, ["dev.system:reboot"] = true,
               ["dev.system:set_tls"] = true, ["dev.hid:set_mode"] = true, ["dev.system:update"] = true }

local functions = {}
local function collect(tbl, prefix, seen)
  if seen[tbl] then return end
  seen[tbl] = true
  for k, v in pairs(tbl) do
    if type(v) == "function" then functions[#functions + 1] = { prefix .. k, v }
    elseif type(v) == "table" then collect(v, prefix .. k .. ".", seen) end
  end
end
collect(kvm, "kvm.", {})
local objects = { ["dev:"] = dev }
for _, area in ipairs({ "storage", "virtual", "hid", "stream", "network", "system", "scripts", "tailscale", "auth" }) do
  objects["dev." .. area .. ":"] = dev[area]
end
for prefix, object in pairs(objects) do
  for name, f in pairs(getmetatable(object).__methods) do functions[#functions + 1] = { prefix .. name, f, object } end
end
table.sort(functions, function(a, b) return a[1] < b[1] end)

t.run {
  every_function = function()
    local calls, errors, kinds = 0, 0, {}
    for _, entry in ipairs(functions) do
      local name, f, self = entry[1], entry[2], entry[3]
      if not skip[name] then
        local function try(...)
          calls = calls + 1
          local results = table.pack(pcall(kvm.timeout, waits[name] and 0.3 or 5, f, ...))
          local ok, err = results[1], results[2]
          -- A task made by kvm.spawn(f, bad arguments) fails later: see its error here.
          for i = 2, results.n do
            if getmetatable(results[i]) and tostring(results[i]):match("^kvm.Task") then pcall(results[i].wait, results[i]) end
          end
          if not ok then
            errors = errors + 1
            local kind = getmetatable(err) == kvm.Error and err.kind or type(err)
            if kind == "timeout" and waits[name] then kind = "waited" end
            if kind == "timeout" then io.stderr:write("timed out: ", name, "\n") end
            kinds[kind] = (kinds[kind] or 0) + 1
          end
        end
        try()
        for _, a in ipairs(values) do
          try(arg(a))
          if self then
            try(self, arg(a))
            try(self, "x", arg(a))
            try(self, arg(a), arg(a))
          else
            for _, b in ipairs({ "nil", 0, "x", {}, true }) do try(arg(a), arg(b)) end
          end
        end
      end
    end
    t.ok(#functions > 100, "functions walked: " .. #functions)
    t.ok(calls > 5000, "calls: " .. calls)
    t.ok((kinds.usage or 0) > 1000, "usage errors: " .. (kinds.usage or 0))
    t.eq(kinds.timeout, nil, "no call hung")
  end,
}
