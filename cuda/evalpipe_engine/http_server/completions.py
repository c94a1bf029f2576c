"""POST /v1/completions: the response object, or (stream: true) the chunks of the event stream.

Without streaming the choices come back whole once every sample is done. With streaming each drawn token yields
a chunk with the text that became final (text_stream.py; "" while held back, and such chunks are sent only when
they carry logprobs) and each finished sample a last chunk with its finish_reason; with echo the prompt comes first,
in a chunk of its own per choice (with its logprobs once they are scored). `usage` follows in a chunk of its own
when stream_options.include_usage is set.

finish_reason is "stop" for a stop string or the EOS, "length" for max_tokens or the model's last position (and for
echo with max_tokens 0); stop_reason names the stop string (null otherwise), as vLLM does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from .context import ServerContext
from .flow import Choice, Flow
from .jobs import PromptsScored, SampleFinished, TokenDrawn
from .logprobs_json import TokenNames, legacy_logprobs
from .request_params import CompletionParams, parse_completion

Reply = dict[str, Any] | Iterator[dict[str, Any]]


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
    for event in flow.events():
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


def _chunks(flow: Flow, params: CompletionParams, head: dict[str, Any], names: TokenNames) -> Iterator[dict[str, Any]]:
    offsets = {choice.index: 0 for choice in flow.choices}
    with_logprobs = params.logprobs is not None

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

    def echoes() -> Iterator[dict[str, Any]]:
        for choice in flow.choices:
            prompt = flow.scored[choice.prompt] if flow.scored is not None else []
            text = flow.prompts[choice.prompt].text
            yield {**head, "choices": [part(choice, text, prompt, done=choice.budget == 0)]}

    try:
        if params.echo and not with_logprobs:
            yield from echoes()
        for event in flow.events():
            if isinstance(event, PromptsScored):
                flow.scored = event.prompts
                yield from echoes()
            elif isinstance(event, TokenDrawn):
                for choice in flow.showing(event.key, event.sample_index):
                    choice.tokens.append(event.token)
                    assert choice.stream is not None
                    text = choice.stream.add(event.token.token)
                    if text or with_logprobs:
                        yield {**head, "choices": [part(choice, text, [event.token])]}
            elif isinstance(event, SampleFinished):
                for choice in flow.showing(event.key, event.sample_index):
                    choice.finished = event
                    assert choice.stream is not None
                    yield {**head, "choices": [part(choice, choice.stream.finish(event.completion), [], done=True)]}
        if params.include_usage:
            yield {**head, "choices": [], "usage": flow.usage()}
    finally:
        flow.cancel()  # a no-op once the job is done; stops nothing else (the worker skips cancelled jobs)
