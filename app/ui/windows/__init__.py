"""Top-level windows: each wires its view-model to its widgets."""
