-- Plays the recorded macro login.kvm-macro (next to this script) and checks the screen changed.
-- Run: scripts/kvmlua --sim scripts/examples/play_macro.lua [speed]
local dev = dev or kvm.connect()
local here = arg[0]:match("^(.*)/") or "."
local macro = kvm.macro.load(here .. "/login.kvm-macro")
print(("%s: %d steps over %.2f s"):format(tostring(macro), #macro, macro:duration()))
local before = dev:screenshot()
macro:play(dev, { speed = tonumber(arg[1]) or 1 })
local after = dev:wait_still { seconds = 0.5 } or dev:screenshot()
print(("played; %.1f%% of the screen changed"):format(100 * after:diff(before)))
