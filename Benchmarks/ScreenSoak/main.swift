// Screen soak (being written): streams frames from a simulator and reports memory growth.
print("ScreenSoak: not written yet")
