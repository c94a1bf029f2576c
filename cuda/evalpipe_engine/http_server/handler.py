"""The HTTP layer: routes, the bearer token, JSON bodies, JSON and event-stream responses, one log line a request.

Every request runs on its own thread (ThreadingHTTPServer); the engine work goes to the one engine worker. A
response is JSON with a Content-Length, or for `stream: true` an event stream (`data: {...}\\n\\n` chunks ending with
`data: [DONE]`) in chunked transfer encoding, so connections are kept alive either way. A client that goes away
mid-stream ends only its own request (its job is marked cancelled); the server goes on.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..errors import EngineError
from .api_errors import AUTHENTICATION, SERVER_ERROR, ApiError, bad_value, from_engine_error
from .chat_completions import chat_completions
from .completions import Chunk, Reply, completions
from .context import SOFTWARE, ServerContext
from .flow import Flow
from .tokenization import detokenize, tokenize

log = logging.getLogger("evalpipe_engine.http")

MAX_BODY_BYTES = 64 * 2**20
IDLE_CONNECTION_S = 300

Endpoint = Callable[[ServerContext, dict[str, Any]], "dict[str, Any] | tuple[Reply, Flow]"]


def _models(ctx: ServerContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"object": "list", "data": [ctx.model_card()]}


def _health(ctx: ServerContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"status": "ok", "model": ctx.served_name}


def _version(ctx: ServerContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"version": SOFTWARE.split("/", 1)[1], "software": SOFTWARE}


def _tokenizer_info(ctx: ServerContext, body: dict[str, Any]) -> dict[str, Any]:
    return ctx.tokenizer_info()


ROUTES: dict[str, dict[str, Endpoint]] = {
    "/v1/models": {"GET": _models},
    "/health": {"GET": _health},
    "/version": {"GET": _version},
    "/tokenizer_info": {"GET": _tokenizer_info},
    "/v1/completions": {"POST": completions},
    "/v1/chat/completions": {"POST": chat_completions},
    "/tokenize": {"POST": tokenize},
    "/detokenize": {"POST": detokenize},
}
OPEN_PATHS = frozenset({"/health"})  # answered without the bearer token


def _as_api_error(exc: Exception) -> ApiError:
    """Any failure while answering, as the error the client gets (a bug's traceback goes to stderr)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, EngineError):
        return from_engine_error(exc)
    traceback.print_exc()
    return ApiError(500, f"internal error: {type(exc).__name__}: {exc}", error_type=SERVER_ERROR)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


class ApiHttpServer(ThreadingHTTPServer):
    daemon_threads = True  # a thread blocked on an idle keep-alive connection never holds up the exit

    def __init__(self, address: tuple[str, int], ctx: ServerContext | None = None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.ctx = ctx
        self._active = 0  # requests being answered (idle keep-alive connections are not counted)
        self._idle = threading.Condition()
        super().__init__(address, Handler)

    def enter(self) -> None:
        with self._idle:
            self._active += 1

    def leave(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout_s)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.error("error on a connection from %s:\n%s", client_address[0], traceback.format_exc().rstrip())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = SOFTWARE
    timeout = IDLE_CONNECTION_S
    server: ApiHttpServer

    def version_string(self) -> str:
        return SOFTWARE

    # The one line per request is written by _dispatch; the base class logs only malformed requests this way.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    # -- the request -----------------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        started = time.perf_counter()
        path = urlsplit(self.path).path
        path = path.rstrip("/") or "/"
        note = ""
        status = 500
        self.server.enter()
        try:
            status, note = self._answer(path)
        except OSError:  # the client went away while we answered
            status, note = 499, " (client disconnected)"
            self.close_connection = True
        finally:
            self.server.leave()
        log.info(
            '%s "%s %s" %d %.3fs%s',
            self.client_address[0],
            self.command,
            path,
            status,
            time.perf_counter() - started,
            note,
        )

    def _answer(self, path: str) -> tuple[int, str]:
        ctx = self.server.ctx
        assert ctx is not None
        methods = ROUTES.get(path)
        try:
            if methods is None:
                raise ApiError(404, f"no route {self.command} {path}", code="unknown_url")
            endpoint = methods.get(self.command)
            if endpoint is None:
                raise ApiError(405, f"{path} takes {', '.join(methods)}, not {self.command}", code="method_not_allowed")
            if ctx.api_key is not None and path not in OPEN_PATHS:
                self._authorize(ctx.api_key)
            body = self._read_body() if self.command == "POST" else {}
            result = endpoint(ctx, body)
        except OSError:
            raise
        except Exception as exc:
            return self._send_error(_as_api_error(exc)), ""
        if isinstance(result, dict):
            self._send_json(200, result)
            return 200, ""
        reply, flow = result
        return self._send_reply(reply, flow)

    def _authorize(self, key: str) -> None:
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode("utf-8"), f"Bearer {key}".encode()):
            raise ApiError(
                401,
                "missing or wrong API key: send the header `Authorization: Bearer <key>` with the key this server "
                "was started with (--api-key-env)",
                error_type=AUTHENTICATION,
                code="invalid_api_key",
            )

    def _read_body(self) -> dict[str, Any]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ApiError(411, "send the request body with a Content-Length (chunked bodies are not read)")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise ApiError(400, "Content-Length is not a number") from None
        if length > MAX_BODY_BYTES:
            raise ApiError(413, f"the request body has {length} bytes, more than the {MAX_BODY_BYTES} allowed")
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw.strip():
            raise bad_value("the request body is empty: send a JSON object", None, code=None)
        try:
            body = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise bad_value("the request body is not UTF-8", None, code=None) from None
        except json.JSONDecodeError as exc:
            raise bad_value(
                f"the request body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", None
            ) from None
        if not isinstance(body, dict):
            raise bad_value("the request body must be a JSON object", None)
        return body

    # -- responses -------------------------------------------------------------------------------------------------
    def _send_json(self, status: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()) -> None:
        data = _dumps(obj)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, exc: ApiError) -> int:
        headers: tuple[tuple[str, str], ...] = ()
        if exc.status == 401:
            headers = (("WWW-Authenticate", "Bearer"),)
        if exc.status == 405:
            headers = (("Allow", ", ".join(ROUTES.get(urlsplit(self.path).path.rstrip("/"), {}))),)
        if self.command == "POST" and exc.status in (401, 404, 405, 411, 413):
            self.close_connection = True  # its body was not read: the connection cannot carry another request
        self._send_json(exc.status, exc.to_json(), headers)
        return exc.status

    def _send_reply(self, reply: Reply, flow: Flow) -> tuple[int, str]:
        if isinstance(reply, dict):
            try:
                self._send_json(200, reply)
            except OSError:
                flow.cancel()
                raise
            return 200, f" prompt_tokens={flow.prompt_tokens} completion_tokens={flow.completion_tokens}"
        return self._stream(reply, flow)

    def _stream(self, chunks: Iterator[list[Chunk]], flow: Flow) -> tuple[int, str]:
        """An event stream. An error before the first chunk is a plain JSON error; after it, an error chunk. Each
        list of chunks (what one batch of engine events made) goes out in one write."""
        try:
            first = next(chunks, None)
        except Exception as exc:
            return self._send_error(_as_api_error(exc)), ""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        note = ""
        try:
            if first is not None:
                self._write_events(first)
                try:
                    for batch in chunks:
                        self._write_events(batch)
                except OSError:
                    raise
                except Exception as exc:
                    error = _as_api_error(exc)
                    self._write_chunk(b"data: " + _dumps(error.to_json()) + b"\n\n")
                    note = f" (failed in the stream: {error.status} {error.message})"
            self.wfile.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            flow.cancel()
            chunks.close()  # type: ignore[attr-defined]
            raise
        return 200, f"{note} prompt_tokens={flow.prompt_tokens} completion_tokens={flow.completion_tokens} stream"

    def _write_events(self, batch: list[Chunk]) -> None:
        if batch:
            self._write_chunk(b"".join(c if isinstance(c, bytes) else b"data: " + _dumps(c) + b"\n\n" for c in batch))

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
