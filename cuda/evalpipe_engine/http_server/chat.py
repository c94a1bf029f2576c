"""The model's chat template, for POST /v1/chat/completions: messages -> one prompt string.

The template is the checkpoint's own: `chat_template` in tokenizer_config.json (a string, or a list of named
templates of which "default" or else the first is taken), else chat_template.jinja, else chat_template.json. It is
rendered by transformers' `apply_chat_template(add_generation_prompt=True)` (as vLLM renders it), the tokenizer
loaded from the model directory on the first chat request. A model without a template has no chat endpoint: the
request is refused with 400 and the way to /v1/completions.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from .api_errors import ApiError


def find_template(directory: Path) -> str | None:
    config = directory / "tokenizer_config.json"
    if config.is_file():
        try:
            template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        except (OSError, ValueError, AttributeError):
            template = None
        if isinstance(template, list):
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default", next(iter(named.values()), None))
        if isinstance(template, str) and template.strip():
            return template
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    as_json = directory / "chat_template.json"
    if as_json.is_file():
        try:
            template = json.loads(as_json.read_text(encoding="utf-8")).get("chat_template")
        except (OSError, ValueError, AttributeError):
            return None
        return template if isinstance(template, str) and template.strip() else None
    return None


class ChatTemplate:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.source = find_template(directory)
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def render(self, messages: list[dict[str, Any]]) -> str:
        if self.source is None:
            raise ApiError(
                400,
                "this model has no chat template (no chat_template in its tokenizer_config.json, no "
                "chat_template.jinja), so it has no chat endpoint: send a prompt to /v1/completions instead",
                param="messages",
                code="no_chat_template",
            )
        with self._lock:  # one tokenizer, loaded once; rendering is cheap next to decoding
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self._directory))
            try:
                text = self._tokenizer.apply_chat_template(
                    messages, chat_template=self.source, tokenize=False, add_generation_prompt=True
                )
            except Exception as exc:  # the template's own raise_exception, or a Jinja error
                raise ApiError(
                    400, f"the chat template refused the messages: {exc}", param="messages", code="invalid_value"
                ) from exc
        if not isinstance(text, str):
            raise ApiError(500, "the chat template did not render to a string", error_type="server_error")
        return text
