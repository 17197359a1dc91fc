// Placeholder: the simulator is being written (issue 3).
