"""`python -m evalpipe_engine http`: bind, load the model once, serve until SIGTERM or SIGINT.

The port is bound before the model loads (a port in use fails at once, not after a long load); the line
`listening on http://HOST:PORT` goes to stderr once the model is loaded and requests are answered (with --port 0,
the port the system chose). A signal stops the listener, refuses waiting requests (503), gives the running batch
STOP_GRACE_S to finish (then abandons it: its requests get 503), and exits 0. A second signal changes nothing.

Exit codes: 0 after a signal; 1 when the model does not load or the address cannot be bound; 2 for a bad setting
(an --api-key-env variable that is unset, schema files missing).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from ..errors import EngineError
from ..request_schemas import SchemaFilesError, engine_schemas
from .chat import ChatTemplate
from .config import ServerConfig
from .context import SOFTWARE, ServerContext
from .handler import ApiHttpServer
from .worker import EngineWorker

log = logging.getLogger("evalpipe_engine.http")

STOP_GRACE_S = 1.0
JOIN_S = 2.0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve_http(config: ServerConfig) -> int:
    sys.stdout = sys.stderr  # stray prints of libraries go to the log; stdout carries nothing
    logging.basicConfig(
        level=os.environ.get("EVALPIPE_ENGINE_LOG", "INFO").upper(),
        stream=sys.stderr,
        format="%(asctime)s engine %(levelname)s %(name)s: %(message)s",
    )
    api_key = None
    if config.api_key_env is not None:
        api_key = os.environ.get(config.api_key_env)
        if not api_key:
            log.error("--api-key-env %s: that environment variable is unset or empty", config.api_key_env)
            return 2
    try:
        engine_schemas()
    except SchemaFilesError as exc:
        log.error("%s", exc)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        first = not stop.is_set()
        stop.set()
        if first:
            log.info("%s received: stopping", signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        httpd = ApiHttpServer((config.host, config.port))
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror or exc)
        return 1
    host, port = httpd.server_address[:2]
    if config.host in ("0.0.0.0", "::"):
        log.warning(
            "listening on every network interface (%s): anyone who can reach this machine can use the model%s",
            config.host,
            "" if api_key else " (no --api-key-env: no key is asked for)",
        )

    from ..loading import load_model

    log.info("loading %s", config.model)
    try:
        loaded = load_model(config.load_params())
    except EngineError as exc:
        log.error("the model did not load: %s%s", exc.message, f" ({exc.hint})" if exc.hint else "")
        httpd.server_close()
        return 1
    if stop.is_set():
        httpd.server_close()
        return 0
    described = loaded.describe()
    log.info(
        "loaded %s: %s %s %s on %s, deterministic %s, %d positions",
        described["model_id"],
        described["backend"],
        described["quant"],
        described["attn"],
        described["device"],
        str(described["deterministic"]).lower(),
        described["max_position_embeddings"],
    )
    worker = EngineWorker(loaded, max_batch_rows=config.max_batch_rows, batch_wait_s=config.batch_wait_ms / 1000.0)
    worker.start()
    httpd.ctx = ServerContext(config, loaded, worker, ChatTemplate(Path(loaded.provenance.directory)), api_key)
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True)
    serving.start()
    print(f"listening on http://{_url_host(str(host))}:{port}", file=sys.stderr, flush=True)
    log.info("%s serving %s (key %s)", SOFTWARE, config.served_model_name, "required" if api_key else "not required")

    crashed = False
    while not stop.wait(0.5):
        if not worker.alive:
            log.error("the engine worker stopped unexpectedly")
            crashed = True
            break
    httpd.shutdown()  # no new connections; requests already being answered run on their own threads
    worker.stop(STOP_GRACE_S)
    clean = worker.join(STOP_GRACE_S + JOIN_S)
    httpd.wait_idle(JOIN_S)  # let the request threads write their last answers (503 for the abandoned ones)
    httpd.server_close()
    log.info("stopped")
    logging.shutdown()
    code = 1 if crashed else 0
    if not clean:  # a forward pass that outlived the grace: do not wait for it (nor let torch tear down under it)
        os._exit(code)
    return code
