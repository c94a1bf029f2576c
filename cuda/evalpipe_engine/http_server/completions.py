"""POST /v1/completions: the response object, or (stream: true) the chunks of the event stream.

Without streaming the choices come back whole once every sample is done. With streaming each drawn token yields
a chunk with the text that became final (text_stream.py; "" while held back: still one chunk per token, as vLLM
sends them, so time to first token and inter-token gaps are measured per token) and each finished sample a last
chunk with its finish_reason; with echo the prompt comes first,
in a chunk of its own per choice (with its logprobs once they are scored). `usage` follows in a chunk of its own
when stream_options.include_usage is set.

finish_reason is "stop" for a stop string or the EOS, "length" for max_tokens or the model's last position (and for
echo with max_tokens 0); stop_reason names the stop string (null otherwise), as vLLM does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from .context import ServerContext
from .flow import Choice, Flow
from .jobs import PromptsScored, SampleFinished, TokenDrawn
from .logprobs_json import TokenNames, legacy_logprobs
from .request_params import CompletionParams, parse_completion

# A streamed reply yields lists of chunks (one list: what one batch of engine events made, written at once); a chunk
# is an object, or the bytes of its whole `data: ...\n\n` event (the per-token chunks, encoded around a constant head).
Chunk = dict[str, Any] | bytes
Reply = dict[str, Any] | Iterator[list[Chunk]]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def event_head(head: dict[str, Any]) -> bytes:
    """`data: {...head...,"choices":[` of a chunk with this head: encoded once per request."""
    return b"data: " + _dumps({**head, "choices": []})[:-2]


def finish_reason(choice: Choice) -> str:
    if choice.finished is None or choice.finished.finish_reason == "length":
        return "length"  # the engine's "stop" (a stop string) and "eos" are both OpenAI's "stop"
    return "stop"


def stop_reason(choice: Choice) -> str | None:
    return None if choice.finished is None else choice.finished.stop_sequence


def completions(ctx: ServerContext, body: dict[str, Any]) -> tuple[Reply, Flow]:
    ctx.check_model(body)
    facts = ctx.loaded.facts
    params = parse_completion(body, ctx.loaded.tokenizer, facts.vocab_size, ctx.config.seed)
    flow = Flow(
        ctx,
        params.prompts,
        params.sampling,
        params.max_tokens,
        echo=params.echo,
        logprobs=params.logprobs,
        seed_keys=params.seed_keys,
        streaming=params.stream,
    )
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time())}
    head["model"] = ctx.served_name
    names = TokenNames(ctx.loaded.tokenizer, params.tokens_as_ids)
    if params.stream:
        return _chunks(flow, params, head, names), flow
    return _response(flow, params, head, names), flow


def _response(flow: Flow, params: CompletionParams, head: dict[str, Any], names: TokenNames) -> dict[str, Any]:
    for event in (event for batch in flow.events() for event in batch):
        if isinstance(event, PromptsScored):
            flow.scored = event.prompts
        elif isinstance(event, TokenDrawn):
            for choice in flow.showing(event.key, event.sample_index):
                choice.tokens.append(event.token)
        elif isinstance(event, SampleFinished):
            for choice in flow.showing(event.key, event.sample_index):
                choice.finished = event
    choices = []
    for choice in flow.choices:
        completion = "" if choice.finished is None else choice.finished.completion
        logprobs = None
        if params.logprobs is not None:
            prompt = flow.scored[choice.prompt] if params.echo and flow.scored is not None else []
            logprobs, _ = legacy_logprobs([*prompt, *choice.tokens], names)
        choices.append(
            {
                "index": choice.index,
                "text": (flow.prompts[choice.prompt].text if params.echo else "") + completion,
                "logprobs": logprobs,
                "finish_reason": finish_reason(choice),
                "stop_reason": stop_reason(choice),
            }
        )
    return {**head, "choices": choices, "usage": flow.usage()}


def _chunks(flow: Flow, params: CompletionParams, head: dict[str, Any], names: TokenNames) -> Iterator[list[Chunk]]:
    offsets = {choice.index: 0 for choice in flow.choices}
    with_logprobs = params.logprobs is not None
    prefix = event_head(head)

    def part(choice: Choice, text: str, entries: list[Any], done: bool = False) -> dict[str, Any]:
        logprobs = None
        if with_logprobs:
            logprobs, offsets[choice.index] = legacy_logprobs(entries, names, offsets[choice.index])
        return {
            "index": choice.index,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": finish_reason(choice) if done else None,
            "stop_reason": stop_reason(choice) if done else None,
        }

    def token_event(choice: Choice, text: str) -> bytes:  # as _dumps({**head, "choices": [part(choice, text, [])]})
        return b'%s{"index":%d,"text":%s,%s' % (prefix, choice.index, _dumps(text), _TOKEN_TAIL)

    def echoes() -> list[Chunk]:
        out: list[Chunk] = []
        for choice in flow.choices:
            prompt = flow.scored[choice.prompt] if flow.scored is not None else []
            text = flow.prompts[choice.prompt].text
            out.append({**head, "choices": [part(choice, text, prompt, done=choice.budget == 0)]})
        return out

    try:
        if params.echo and not with_logprobs:
            yield echoes()
        for batch in flow.events():
            out: list[Chunk] = []
            for event in batch:
                if isinstance(event, TokenDrawn):
                    for choice in flow.showing(event.key, event.sample_index):
                        choice.tokens.append(event.token)
                        assert choice.stream is not None
                        text = choice.stream.add(event.token.token)
                        if with_logprobs:
                            out.append({**head, "choices": [part(choice, text, [event.token])]})
                        else:
                            out.append(token_event(choice, text))
                elif isinstance(event, SampleFinished):
                    for choice in flow.showing(event.key, event.sample_index):
                        choice.finished = event
                        assert choice.stream is not None
                        rest = choice.stream.finish(event.completion)
                        out.append({**head, "choices": [part(choice, rest, [], done=True)]})
                elif isinstance(event, PromptsScored):
                    flow.scored = event.prompts
                    out.extend(echoes())
            if out:
                yield out
        if params.include_usage:
            yield [{**head, "choices": [], "usage": flow.usage()}]
    finally:
        flow.cancel()  # a no-op once the job is done; stops nothing else (the worker skips cancelled jobs)


_TOKEN_TAIL = b'"logprobs":null,"finish_reason":null,"stop_reason":null}]}\n\n'
