"""Kept import path: the chunked LM head lives in layers/head.py."""

from .layers.head import DEFAULT_CHUNK_ROWS, LMHead, chunk_rows_for, target_logprobs_chunked

__all__ = ["DEFAULT_CHUNK_ROWS", "LMHead", "chunk_rows_for", "target_logprobs_chunked"]
