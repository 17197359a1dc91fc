-- Console login: wait for the login prompt, log in with a secret password, run a command, read
-- its answer, log out.
-- Run: scripts/kvmlua --sim scripts/examples/console_login.lua [user [password]]
--      (the simulated machine: root / root; $TARGET_PASSWORD overrides)
-- The screen is read with OCR (dev:wait_text); a background task presses Enter at GRUB so its
-- countdown does not hold the boot up.
local dev = dev or kvm.connect()
local user = arg[1] or "root"
local password = arg[2] or os.getenv("TARGET_PASSWORD") or "root"

dev:power_on()
local grub = kvm.spawn(function()
  dev:wait_text("GNU GRUB", { timeout = 120 })
  dev:key("enter")
  print("GRUB: booting the default entry")
end)
local prompt = dev:wait_text("login:", { timeout = 120 })
grub:cancel()
print(("login prompt: %q"):format(prompt.line))

dev:type(user .. "\n")
dev:wait_text("Password:", { timeout = 10 })
dev:type(password .. "\n", { secret = true })
-- The shell's prompt is "<user>@<host>:~#". (Only the user part is waited for: OCR has read
-- the simulator's host name kvmtarget as "kymtarget".)
local logged_in, err = pcall(dev.wait_text, dev, user .. "@", { timeout = 15 })
if not logged_in then
  if dev:find_text("Login incorrect") then error("the console refused the login of " .. user .. ": Login incorrect", 0) end
  error(err, 0)
end
print("logged in as " .. user)

-- The command line itself shows "uname -a"; only its answer ends in the OS name.
dev:type("uname -a\n")
local answer = dev:wait_text("gnu/linux%s*$", { plain = false, timeout = 10 })
print("the shell answered: " .. answer.line)

-- On the simulator, check what its console shows (the ground truth behind the OCR).
local ok, state = pcall(dev.sim_state, dev)
local simulated = ok and state.machine
if simulated then
  local output
  for _, line in ipairs(state.screen.lines) do
    if line.text:find("^Linux .*GNU/Linux$") then output = line.text end
  end
  if state.machine.scene ~= "shell" or not output then error("the shell did not run uname -a: " .. state.machine.scene) end
  print("the simulator's screen has: " .. output)
end

-- Log out: the screen is cleared and a fresh prompt ends its line (the old one had the name
-- after it); the blinking cursor behind it may read as "_".
dev:type("exit\n")
dev:wait_text("login:[%s_]*$", { plain = false, timeout = 15 })
print("logged out")

if simulated and dev:sim_state().machine.scene ~= "login" then error("not logged out: " .. dev:sim_state().machine.scene) end
