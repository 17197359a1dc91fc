print("kvmlua")
