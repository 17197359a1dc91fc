print("nanokvm-sim: not built yet")
