"""POST /v1/chat/completions: the messages through the model's chat template (chat.py), then decoded as a completion
of that prompt (its key "0" for the seeds, as a one-prompt completion request).

Streaming sends, per choice, a first chunk with the assistant role, then a content delta per drawn token as
/v1/completions sends text (its content "" while no text is final), then a last chunk with the finish_reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from .api_errors import bad_value
from .completions import Chunk, Reply, finish_reason, stop_reason
from .context import ServerContext
from .flow import Flow
from .jobs import SampleFinished, TokenDrawn
from .prompts import Prompt
from .request_params import ChatParams, parse_chat


def chat_completions(ctx: ServerContext, body: dict[str, Any]) -> tuple[Reply, Flow]:
    ctx.check_model(body)
    params = parse_chat(body, ctx.config.seed)
    text = ctx.chat.render(params.messages)
    ids = list(ctx.loaded.tokenizer.encode(text, add_special_tokens=False).ids)
    if not ids:
        raise bad_value("the chat template rendered the messages to an empty prompt", "messages")
    flow = Flow(ctx, [Prompt(ids, text)], params.sampling, params.max_tokens, streaming=params.stream)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": ctx.served_name}
    if params.stream:
        return _chunks(flow, params, head), flow
    return _response(flow, head), flow


def _response(flow: Flow, head: dict[str, Any]) -> dict[str, Any]:
    for event in (event for batch in flow.events() for event in batch):
        if isinstance(event, TokenDrawn):
            for choice in flow.showing(event.key, event.sample_index):
                choice.tokens.append(event.token)
        elif isinstance(event, SampleFinished):
            for choice in flow.showing(event.key, event.sample_index):
                choice.finished = event
    choices = [
        {
            "index": choice.index,
            "message": {"role": "assistant", "content": "" if choice.finished is None else choice.finished.completion},
            "logprobs": None,
            "finish_reason": finish_reason(choice),
            "stop_reason": stop_reason(choice),
        }
        for choice in flow.choices
    ]
    return {**head, "object": "chat.completion", "choices": choices, "usage": flow.usage()}


def _chunks(flow: Flow, params: ChatParams, head: dict[str, Any]) -> Iterator[list[Chunk]]:
    chunk_head = {**head, "object": "chat.completion.chunk"}

    def chunk(index: int, delta: dict[str, Any], reason: str | None = None, stop: str | None = None) -> dict[str, Any]:
        part = {"index": index, "delta": delta, "logprobs": None, "finish_reason": reason, "stop_reason": stop}
        return {**chunk_head, "choices": [part]}

    try:
        yield [chunk(choice.index, {"role": "assistant", "content": ""}) for choice in flow.choices]
        for batch in flow.events():
            out: list[Chunk] = []
            for event in batch:
                if isinstance(event, TokenDrawn):
                    for choice in flow.showing(event.key, event.sample_index):
                        choice.tokens.append(event.token)
                        assert choice.stream is not None
                        out.append(chunk(choice.index, {"content": choice.stream.add(event.token.token)}))
                elif isinstance(event, SampleFinished):
                    for choice in flow.showing(event.key, event.sample_index):
                        choice.finished = event
                        assert choice.stream is not None
                        rest = choice.stream.finish(event.completion)
                        delta = {"content": rest} if rest else {}
                        out.append(chunk(choice.index, delta, finish_reason(choice), stop_reason(choice)))
            if out:
                yield out
        if params.include_usage:
            yield [{**chunk_head, "choices": [], "usage": flow.usage()}]
    finally:
        flow.cancel()
