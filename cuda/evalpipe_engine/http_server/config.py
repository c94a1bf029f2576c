"""The `http` subcommand's settings: its command-line arguments and the `load` params they make."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ..generation import DEFAULT_MAX_BATCH_ROWS
from ..loading import ATTN_MODES, DEVICES
from ..quant.modes import QUANT_MODES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_BATCH_WAIT_MS = 5.0


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int  # 0: the system picks a free port (the chosen one is printed)
    model: str
    revision: str | None
    quant: str | None
    attn: str | None
    device: str
    seed: int  # the preset's weight seed, and the sampling seed of requests that give none
    deterministic: bool | None
    api_key_env: str | None  # the environment variable holding the bearer token; None: no token required
    served_model_name: str  # what clients send as `model` (default: --model as given)
    max_batch_rows: int  # samples decoded together, as the generate op's max_batch_rows
    batch_wait_ms: float  # how long the engine worker waits for more requests to batch with the first

    def load_params(self) -> dict[str, Any]:
        """The `load` op's params for this model (loading.load_model)."""
        params: dict[str, Any] = {"model": self.model, "device": self.device, "seed": self.seed}
        for key, value in (
            ("revision", self.revision),
            ("quant", self.quant),
            ("attn", self.attn),
            ("deterministic", self.deterministic),
        ):
            if value is not None:
                params[key] = value
        return params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, required=True, help="TCP port (0: pick a free one and print it)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--model", required=True, help="preset:tiny-starcoder2, a local directory or a hub id")
    parser.add_argument("--revision", help="hub ids only: branch, tag or commit")
    parser.add_argument("--quant", choices=QUANT_MODES, help="precision (default fp32 on CPU, bf16 on CUDA)")
    parser.add_argument("--attn", choices=ATTN_MODES, help="attention backend (default sdpa)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="default auto")
    parser.add_argument("--seed", type=int, default=0, help="preset weight seed and default sampling seed (0)")
    parser.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the batch-invariant engine (default: on for CPU, off on CUDA)",
    )
    parser.add_argument("--api-key-env", help="require `Authorization: Bearer <key>`, the key read from this variable")
    parser.add_argument("--served-model-name", help="the model name clients send (default: --model as given)")
    parser.add_argument(
        "--max-batch-rows",
        type=int,
        default=DEFAULT_MAX_BATCH_ROWS,
        help=f"samples decoded together (default {DEFAULT_MAX_BATCH_ROWS})",
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=DEFAULT_BATCH_WAIT_MS,
        help=f"wait this long for requests to batch with the first (default {DEFAULT_BATCH_WAIT_MS:g})",
    )


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ServerConfig:
    """The settings of parsed arguments; a bad value ends the process through parser.error (exit 2)."""
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0..65535, got {args.port}")
    if not args.host.strip():
        parser.error("--host is empty")
    if not args.model.strip():
        parser.error("--model is empty")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.max_batch_rows < 1:
        parser.error("--max-batch-rows must be >= 1")
    if not 0 <= args.batch_wait_ms <= 10_000:
        parser.error("--batch-wait-ms must be in [0, 10000]")
    if args.api_key_env is not None and not args.api_key_env.strip():
        parser.error("--api-key-env is empty: name the environment variable that holds the key")
    served = args.served_model_name if args.served_model_name is not None else args.model
    if not served.strip():
        parser.error("--served-model-name is empty")
    return ServerConfig(
        host=args.host.strip(),
        port=args.port,
        model=args.model.strip(),
        revision=args.revision,
        quant=args.quant,
        attn=args.attn,
        device=args.device,
        seed=args.seed,
        deterministic=args.deterministic,
        api_key_env=args.api_key_env,
        served_model_name=served,
        max_batch_rows=args.max_batch_rows,
        batch_wait_ms=args.batch_wait_ms,
    )
