"""State that the rules consult, applied on event time."""
