"""The bodies of POST /v1/completions and /v1/chat/completions, read into typed settings.

Each field is checked on its own (fields.py) and the fields that span each other here (max_tokens 0 without echo,
seed_keys per prompt). Fields this server does not implement are refused with 400 unless they hold their no-op
value (`frequency_penalty: 0`, `best_of` = n, ...), and unknown fields are refused, so nothing is silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenizers import Tokenizer

from .api_errors import bad_value, unsupported
from .fields import (
    check_known,
    read_bool,
    read_int,
    read_number,
    read_stop,
    read_stream_options,
    refuse_unless_default,
)
from .prompts import Prompt, parse_prompts

MAX_N = 1024  # choices per prompt
MAX_TOP_LOGPROBS = 5  # as OpenAI's legacy completions API

_NO_OP_FIELDS: tuple[tuple[str, tuple[Any, ...], str], ...] = (
    ("frequency_penalty", (0,), "penalties are not supported (only 0)"),
    ("presence_penalty", (0,), "penalties are not supported (only 0)"),
    ("repetition_penalty", (1,), "penalties are not supported (only 1)"),
    ("logit_bias", ({},), "logit_bias is not supported (only {} or null)"),
    ("top_k", (-1, 0), "top_k is not supported: sampling takes temperature and top_p (only -1, 0 or null)"),
)
_COMMON_FIELDS = (
    *("model", "n", "temperature", "top_p", "stop", "seed", "stream", "stream_options", "user"),
    *(name for name, _, _ in _NO_OP_FIELDS),
)
COMPLETION_FIELDS = (
    *_COMMON_FIELDS,
    "prompt",
    "max_tokens",
    "echo",
    "logprobs",
    "best_of",
    "suffix",
    "return_tokens_as_token_ids",
    "add_special_tokens",
    "seed_keys",
    "ignore_eos",
)
CHAT_FIELDS = (
    *_COMMON_FIELDS,
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "logprobs",
    "top_logprobs",
    "ignore_eos",
)


@dataclass(frozen=True)
class Sampling:
    """How a request's samples are drawn. Requests with equal `group` decode in one batch."""

    n: int
    temperature: float  # 0: greedy
    top_p: float
    stop: tuple[str, ...]
    seed: int
    # vLLM's extension: EOS does not end a sample, so it runs to max_tokens (serving benchmarks use it)
    ignore_eos: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def group(self) -> tuple[float, float, tuple[str, ...]]:
        return (self.temperature, 1.0 if self.greedy else self.top_p, self.stop)


@dataclass(frozen=True)
class CompletionParams:
    prompts: list[Prompt]
    sampling: Sampling
    max_tokens: int | None  # None: up to the model's last position
    echo: bool
    logprobs: int | None  # None: no logprobs; k: the chosen token and the k most likely
    stream: bool
    include_usage: bool
    tokens_as_ids: bool  # logprobs name tokens "token_id:<id>" (vLLM's return_tokens_as_token_ids)
    seed_keys: list[str]  # the generate op's key of each prompt, for its samples' seeds


@dataclass(frozen=True)
class ChatParams:
    messages: list[dict[str, Any]]
    sampling: Sampling
    max_tokens: int | None
    stream: bool
    include_usage: bool


def _sampling(body: dict[str, Any], default_seed: int) -> Sampling:
    for name, defaults, what in _NO_OP_FIELDS:
        refuse_unless_default(body, name, defaults, what)
    if body.get("user") is not None and not isinstance(body.get("user"), str):
        raise bad_value("user must be a string", "user")
    return Sampling(
        n=read_int(body, "n", 1, 1, MAX_N),
        # OpenAI's default temperature is 1; 0 is greedy.
        temperature=read_number(body, "temperature", 1.0, 0.0, 1e6),
        top_p=read_number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True),
        stop=read_stop(body),
        seed=read_int(body, "seed", default_seed, 0, None),
        ignore_eos=read_bool(body, "ignore_eos", False),
    )


def parse_completion(
    body: dict[str, Any], tokenizer: Tokenizer, vocab_size: int, default_seed: int
) -> CompletionParams:
    check_known(body, COMPLETION_FIELDS, "/v1/completions")
    sampling = _sampling(body, default_seed)
    if body.get("suffix") is not None:
        raise unsupported("suffix", "suffix (insertion) is not supported")
    best_of = read_int(body, "best_of", None, 1, None)
    if best_of is not None and best_of != sampling.n:
        raise unsupported("best_of", f"best_of must equal n ({sampling.n}): ranking by likelihood is not supported")
    echo = read_bool(body, "echo", False)
    max_tokens = read_int(body, "max_tokens", None, 0, None)
    if max_tokens == 0 and not echo:
        raise bad_value("max_tokens = 0 asks for nothing: use max_tokens >= 1, or 0 with echo: true", "max_tokens")
    logprobs_value = body.get("logprobs")
    if isinstance(logprobs_value, bool):
        raise bad_value(
            f"logprobs must be an integer in [0, {MAX_TOP_LOGPROBS}] (the top-k to return) or null, got "
            f"{str(logprobs_value).lower()}",
            "logprobs",
        )
    logprobs = read_int(body, "logprobs", None, 0, MAX_TOP_LOGPROBS)
    stream = read_bool(body, "stream", False)
    prompts = parse_prompts(body.get("prompt"), tokenizer, vocab_size, read_bool(body, "add_special_tokens", False))
    keys = body.get("seed_keys")
    if keys is None:
        seed_keys = [str(i) for i in range(len(prompts))]
    elif (
        not isinstance(keys, list)
        or len(keys) != len(prompts)
        or not all(isinstance(k, str) and k for k in keys)
        or len(set(keys)) != len(keys)
    ):
        raise bad_value(
            f"seed_keys must be a list of {len(prompts)} distinct non-empty strings, one per prompt", "seed_keys"
        )
    else:
        seed_keys = list(keys)
    return CompletionParams(
        prompts=prompts,
        sampling=sampling,
        max_tokens=max_tokens,
        echo=echo,
        logprobs=logprobs,
        stream=stream,
        include_usage=read_stream_options(body, stream),
        tokens_as_ids=read_bool(body, "return_tokens_as_token_ids", False),
        seed_keys=seed_keys,
    )


def parse_chat(body: dict[str, Any], default_seed: int) -> ChatParams:
    check_known(body, CHAT_FIELDS, "/v1/chat/completions")
    sampling = _sampling(body, default_seed)
    if read_bool(body, "logprobs", False) or body.get("top_logprobs") is not None:
        raise unsupported("logprobs", "logprobs are not supported on chat completions: use /v1/completions")
    max_tokens = read_int(body, "max_completion_tokens", None, 1, None)
    legacy = read_int(body, "max_tokens", None, 1, None)
    if max_tokens is not None and legacy is not None and max_tokens != legacy:
        raise bad_value("max_tokens and max_completion_tokens differ: give one of them", "max_tokens")
    stream = read_bool(body, "stream", False)
    return ChatParams(
        messages=_messages(body.get("messages")),
        sampling=sampling,
        max_tokens=max_tokens if max_tokens is not None else legacy,
        stream=stream,
        include_usage=read_stream_options(body, stream),
    )


def _messages(value: Any) -> list[dict[str, Any]]:
    """`messages`: a non-empty list of {role, content} with string content (or a list of text parts)."""
    if not isinstance(value, list) or not value:
        raise bad_value("messages must be a non-empty list of {role, content} objects", "messages")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not message["role"]:
            raise bad_value(f"{where} must be an object with a string role", "messages")
        content = message.get("content")
        if isinstance(content, list):
            if not all(
                isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
            ):
                raise unsupported("messages", f"{where}.content: only text parts ({{type: text, text}}) are supported")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise bad_value(f"{where}.content must be a string or a list of text parts", "messages")
        extra = sorted(set(message) - {"role", "content", "name"})
        if extra:
            raise unsupported("messages", f"{where}: field(s) {', '.join(extra)} are not supported (tools, images)")
        entry: dict[str, Any] = {"role": message["role"], "content": content}
        if isinstance(message.get("name"), str):
            entry["name"] = message["name"]
        out.append(entry)
    return out
