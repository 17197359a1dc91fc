-- Read the ATX power and HDD LEDs (seed notes: GET /api/vm/gpio/led).
local dev = dev or kvm.connect()
local leds = dev:leds()
print(("power LED: %s, HDD LED: %s"):format(leds.power and "on" or "off", leds.hdd and "on" or "off"))
