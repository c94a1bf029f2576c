"""Kept import path: the rotary embeddings live in layers/rotary.py."""

from .layers.rotary import RopeScaling, RopeTables, apply_rope_inplace, apply_rope_reference, parse_rope_scaling

__all__ = ["RopeScaling", "RopeTables", "apply_rope_inplace", "apply_rope_reference", "parse_rope_scaling"]
