-- Console login: wait for the login prompt, log in with a secret password, run a command.
-- Run: scripts/kvmlua --sim scripts/examples/console_login.lua [user [password]]
--      (the simulated machine: root / root; $TARGET_PASSWORD overrides)
-- Until screen text can be read, the prompt is recognised by its shape: a few lines of text
-- at the top of an otherwise black screen.
local dev = dev or kvm.connect()
local user = arg[1] or "root"
local password = arg[2] or os.getenv("TARGET_PASSWORD") or "root"

-- Whether any sampled pixel between the fractions y0 and y1 of the height is lit.
local function ink(frame, y0, y1)
  for y = math.floor(frame.height * y0), math.floor(frame.height * y1) - 1, 2 do
    for x = 0, frame.width - 1, 3 do
      local r, g, b = frame:pixel(x, y)
      if r + g + b > 0x120 then return true end
    end
  end
  return false
end

dev:power_on()
local prompt = false
for _ = 1, 120 do
  local frame = dev:screenshot()
  -- The login screen: 3 lines of text at the top, nothing below (POST, GRUB and the boot
  -- messages all draw further down).
  if ink(frame, 0, 0.066) and not ink(frame, 0.07, 1) then prompt = true break end
  kvm.sleep(0.25)
end
if not prompt then error("no login prompt") end
print("login prompt")

dev:type(user .. "\n")
kvm.sleep(0.3)
dev:type(password .. "\n", { secret = true })
kvm.sleep(0.5)
local before = dev:screenshot()
dev:type("uname -a\n")
kvm.sleep(0.5)
local changed = dev:screenshot():diff(before)
if changed == 0 then error("the command printed nothing") end
print(("logged in and ran uname -a (%.2f%% of the screen changed)"):format(100 * changed))

local ok, state = pcall(dev.sim_state, dev)
if ok and state.machine then
  local output
  for _, line in ipairs(state.screen.lines) do
    if line.text:find("^Linux ") then output = line.text end
  end
  if state.machine.scene ~= "shell" or not output then error("not logged in: " .. state.machine.scene) end
  print(output)
end
