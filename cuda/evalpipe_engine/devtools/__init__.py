"""Dev tooling, not on the serving path: the HF reference model (parity and benchmark baseline), random weights
and quality measures."""
