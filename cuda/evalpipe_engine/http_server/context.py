"""What every request thread shares: the loaded model's facts, the engine worker, the served name and the key."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import ENGINE_VERSION
from .api_errors import ApiError
from .chat import ChatTemplate

if TYPE_CHECKING:
    from ..loading import LoadedModel
    from .config import ServerConfig
    from .worker import EngineWorker

SOFTWARE = f"evalpipe-engine/{ENGINE_VERSION}"


@dataclass
class ServerContext:
    config: ServerConfig
    loaded: LoadedModel
    worker: EngineWorker
    chat: ChatTemplate
    api_key: str | None
    started: int = field(default_factory=lambda: int(time.time()))

    @property
    def served_name(self) -> str:
        return self.config.served_model_name

    @property
    def max_model_len(self) -> int:
        return int(self.loaded.facts.max_position_embeddings)

    def check_model(self, body: dict[str, Any]) -> None:
        """A request's `model` must be the served name (absent: the served model)."""
        model = body.get("model")
        if model is None or model == self.served_name:
            return
        if not isinstance(model, str):
            raise ApiError(400, "model must be a string", param="model", code="invalid_value")
        raise ApiError(
            404,
            f"The model `{model}` does not exist: this server serves `{self.served_name}`",
            param="model",
            code="model_not_found",
        )

    def model_card(self) -> dict[str, Any]:
        """The one entry of GET /v1/models, with the engine's load result (what a run's manifest records)."""
        return {
            "id": self.served_name,
            "object": "model",
            "created": self.started,
            "owned_by": "evalpipe",
            "root": self.loaded.provenance.model_id,
            "parent": None,
            "max_model_len": self.max_model_len,
            "permission": [],
            "evalpipe": self.loaded.describe(),
        }

    def tokenizer_info(self) -> dict[str, Any]:
        """GET /tokenizer_info, what lm-evaluation-harness's remote tokenizer reads."""
        tok, facts = self.loaded.tokenizer, self.loaded.facts

        def name(token_id: int | None) -> str | None:
            return None if token_id is None else tok.id_to_token(int(token_id))

        return {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": name(facts.bos_token_id),
            "eos_token": name(facts.eos_token_id),
            "pad_token": None,
            "model_max_length": self.max_model_len,
            "vocab_size": facts.vocab_size,
            "chat_template": self.chat.source,
        }
