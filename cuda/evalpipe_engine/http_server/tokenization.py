"""POST /tokenize and /detokenize, in vLLM's shapes, with the engine's own tokenizer.

/tokenize tokenizes as /v1/completions tokenizes a string prompt (no special tokens unless add_special_tokens), so
its ids sent back as a prompt give the same completion. /detokenize keeps special tokens as their text.
"""

from __future__ import annotations

from typing import Any

from .api_errors import bad_value
from .context import ServerContext
from .fields import check_known, read_bool


def tokenize(ctx: ServerContext, body: dict[str, Any]) -> dict[str, Any]:
    check_known(body, ("model", "prompt", "add_special_tokens", "return_token_strs"), "/tokenize")
    ctx.check_model(body)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise bad_value("prompt must be a string (chat messages are not tokenized here)", "prompt")
    tokenizer = ctx.loaded.tokenizer
    ids = list(tokenizer.encode(prompt, add_special_tokens=read_bool(body, "add_special_tokens", False)).ids)
    out: dict[str, Any] = {"count": len(ids), "max_model_len": ctx.max_model_len, "tokens": ids}
    if read_bool(body, "return_token_strs", False):
        out["token_strs"] = [tokenizer.id_to_token(i) for i in ids]
    return out


def detokenize(ctx: ServerContext, body: dict[str, Any]) -> dict[str, Any]:
    check_known(body, ("model", "tokens"), "/detokenize")
    ctx.check_model(body)
    tokens = body.get("tokens")
    vocab = ctx.loaded.facts.vocab_size
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        raise bad_value("tokens must be a list of token ids (integers)", "tokens")
    bad = next((t for t in tokens if not 0 <= t < vocab), None)
    if bad is not None:
        raise bad_value(f"tokens holds id {bad}, outside the vocabulary [0, {vocab})", "tokens")
    return {"prompt": ctx.loaded.tokenizer.decode(tokens, skip_special_tokens=False)}
