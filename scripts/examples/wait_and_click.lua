-- Wait for what the screen shows instead of sleeping: text (OCR) and an openQA needle.
-- Run: scripts/kvmlua --sim scripts/examples/wait_and_click.lua
-- Makes a needle of the login prompt with kvm.needle.save (as you would in the REPL from
-- dev:screenshot()), then waits for it and clicks it, and waits for typed text to appear.
local dev = dev or kvm.connect()
local prompt = dev:wait_text("login:", { timeout = 30 })
print(("login prompt at x=%.3f y=%.3f"):format(prompt.x, prompt.y))
local dir = os.getenv("NEEDLES") or "needles"
os.execute("mkdir -p '" .. dir .. "'")
kvm.needle.save(dev:screenshot(), dir .. "/login-prompt", {
  areas = { { x = 0, y = 0, w = 0.3, h = 0.07, click_point = "center" } }, tags = { "login" } })
local needles = kvm.needle.load(dir)
local match = dev:click_on(needles:tagged("login"), { timeout = 10 })
print(("needle %s matched (%.0f%%), clicked"):format(match.name, match.similarity))
dev:paste("root\n")
local typed = dev:wait_text("root", { timeout = 10 })
print("read back: " .. typed.line)
