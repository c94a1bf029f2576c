"""The JSON-lines protocol server (docs/engine-protocol.md).

stdout carries protocol lines only: at start the real stdout fd is duplicated for the protocol and fd 1 is pointed
at stderr, so stray prints from libraries land in the log. Requests are handled one at a time; every exception
becomes a typed error response and the process stays up. Each op checks its params against
schemas/engine/<op>.json (request_schemas.py) before anything else; the schema files are loaded once before the
`ready` line, and an engine that cannot find them exits at start with the reason on stderr.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

import torch

from . import ENGINE_VERSION, PROTOCOL_VERSION
from .errors import BadRequest, EngineError, InternalError, NotLoaded, OutOfMemory
from .loading import LoadedModel
from .request_schemas import SchemaFilesError, check_params, engine_schemas

log = logging.getLogger("evalpipe_engine")

Emit = Callable[[str, dict[str, Any]], None]
Handler = Callable[["Server", dict[str, Any], Emit], dict[str, Any]]


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError)


class Server:
    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self.model: LoadedModel | None = None

    # -- output --------------------------------------------------------------------------------------------------
    def write(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message, ensure_ascii=False, allow_nan=False) + "\n")
        self._out.flush()

    def require_model(self, op: str) -> LoadedModel:
        if self.model is None:
            raise NotLoaded(f"{op} needs a model, and none is loaded", hint='send {"op":"load"} first')
        return self.model

    # -- dispatch ------------------------------------------------------------------------------------------------
    def handle_line(self, line: str) -> bool:
        """Parse and run one request line. Returns False once a shutdown request has been answered."""
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            self.write(
                {
                    "id": None,
                    "ok": False,
                    "error": BadRequest(
                        f"malformed JSON request line: {exc.msg} at column {exc.colno}",
                        hint='send one JSON object per line: {"id":"r1","op":"info","params":{}}',
                    ).to_json(),
                }
            )
            return True
        rid = request.get("id") if isinstance(request, dict) else None
        if not isinstance(rid, str) or not rid:
            rid_out = rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
            self.write(
                {
                    "id": rid_out,
                    "ok": False,
                    "error": BadRequest(
                        "request has no id: every request needs a non-empty string id",
                        hint='e.g. {"id":"r1","op":"info","params":{}}',
                    ).to_json(),
                }
            )
            return True
        started = time.perf_counter()
        op = request.get("op")
        try:
            if not isinstance(op, str) or op not in OPS:
                raise BadRequest(f"unknown op {op!r}", hint=f"use one of {', '.join(OPS)}")
            params = request.get("params", {})
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise BadRequest(f"{op}: params must be a JSON object")

            def emit(event: str, data: dict[str, Any]) -> None:
                self.write({"id": rid, "event": event, "data": data})

            result = OPS[op](self, params, emit)
            self.write({"id": rid, "ok": True, "result": result})
            log.info("%s %s ok in %.3fs", rid, op, time.perf_counter() - started)
            return op != "shutdown"
        except EngineError as exc:
            log.info("%s %s failed: %s: %s", rid, op, exc.error_type, exc.message)
            self.write({"id": rid, "ok": False, "error": exc.to_json()})
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            if _is_oom(exc):
                _free_memory()
                err: EngineError = OutOfMemory(
                    f"{op}: out of memory ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                    hint="use a smaller batch, context or token_budget, or a lower precision",
                )
            else:
                traceback.print_exc(file=sys.stderr)
                err = InternalError(f"{op}: {type(exc).__name__}: {exc}", hint="this is an engine bug; see stderr")
            self.write({"id": rid, "ok": False, "error": err.to_json()})
        return True


# ----------------------------------------------------------------------------------------------------------------
# Operations


def op_info(server: Server, params: dict[str, Any], emit: Emit) -> dict[str, Any]:
    from .system_info import system_info

    check_params("info", params)
    out = system_info()
    out["model"] = None if server.model is None else server.model.describe()
    return out


def op_load(server: Server, params: dict[str, Any], emit: Emit) -> dict[str, Any]:
    from .loading import load_model

    if server.model is not None:
        server.model = None  # free the old model before loading the next
        _free_memory()
    server.model = load_model(params)
    return server.model.describe()


def op_score(server: Server, params: dict[str, Any], emit: Emit) -> dict[str, Any]:
    from .faults import check_score_faults
    from .scoring import score

    check_score_faults(params)
    return score(server.require_model("score"), params, emit)


def op_generate(server: Server, params: dict[str, Any], emit: Emit) -> dict[str, Any]:
    from .faults import check_generate_faults
    from .generation import generate

    check_generate_faults(params)
    return generate(server.require_model("generate"), params, emit)


def op_bench(server: Server, params: dict[str, Any], emit: Emit) -> dict[str, Any]:
    from .bench import run_bench

    return run_bench(server.require_model("bench").backend, params, emit)


def op_shutdown(server: Server, params: dict[str, Any], emit: Emit) -> dict[str, Any]:
    check_params("shutdown", params)
    return {}


OPS: dict[str, Handler] = {
    "info": op_info,
    "load": op_load,
    "score": op_score,
    "generate": op_generate,
    "bench": op_bench,
    "shutdown": op_shutdown,
}


def serve() -> int:
    """Run the server on this process's stdio until shutdown or EOF. Returns the exit code."""
    proto_fd = os.dup(1)
    os.dup2(2, 1)  # anything else writing to fd 1 now lands on stderr
    sys.stdout = sys.stderr
    out = os.fdopen(proto_fd, "w", encoding="utf-8", buffering=1)
    logging.basicConfig(
        level=os.environ.get("EVALPIPE_ENGINE_LOG", "INFO").upper(),
        stream=sys.stderr,
        format="%(asctime)s engine %(levelname)s %(name)s: %(message)s",
    )
    try:
        engine_schemas()
    except SchemaFilesError as exc:
        log.error("%s", exc)
        return 2
    server = Server(out)
    server.write(
        {"event": "ready", "data": {"protocol": PROTOCOL_VERSION, "engine_version": ENGINE_VERSION, "pid": os.getpid()}}
    )
    stdin = sys.stdin.buffer
    while True:
        raw = stdin.readline()
        if not raw:
            log.info("stdin closed: exiting")
            return 0
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            continue
        if not server.handle_line(line):
            log.info("shutdown requested: exiting")
            return 0
