"""Shared fixtures: the tiny preset written as a local HF directory, and a real engine process driven over stdio
whose every answer is checked against schemas/engine/ (the line envelopes of protocol.json, each op's result and
event data)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import evalpipe_engine  # noqa: F401  (first: sets the MKL and OpenMP environment before torch loads)
from evalpipe_engine.json_schema import Violation
from evalpipe_engine.request_schemas import ENGINE_OPS, engine_schemas, event_violations, result_violations

REPO_ROOT = Path(__file__).resolve().parents[2]
CUDA_DIR = REPO_ROOT / "cuda"
PRESET = "preset:tiny-starcoder2"


class EngineProcess:
    """`python -m evalpipe_engine serve` as a child process; every read is bounded by a timeout. Without `gpu`
    the child sees no CUDA device."""

    def __init__(self, extra_env: dict[str, str] | None = None, timeout_s: float = 120.0, gpu: bool = False) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(CUDA_DIR) + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("HF_HUB_OFFLINE", "1")
        if not gpu:  # CPU tests pin the CPU even on a GPU machine, so `device: auto` means the same everywhere
            env["CUDA_VISIBLE_DEVICES"] = ""
        env.update(extra_env or {})
        self.timeout_s = timeout_s
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "evalpipe_engine", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO_ROOT,
        )
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr_chunks: list[bytes] = []
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        self._next_id = 0
        self.ready = self.read_line()
        _assert_conforms("the ready line", engine_schemas().validate("protocol.json#/$defs/ready", self.ready))

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in self.proc.stderr:
            self.stderr_chunks.append(chunk)

    @property
    def stderr(self) -> str:
        return b"".join(self.stderr_chunks).decode("utf-8", "replace")

    def read_line(self) -> dict[str, Any]:
        try:
            raw = self._lines.get(timeout=self.timeout_s)
        except queue.Empty:
            raise AssertionError(f"engine sent nothing for {self.timeout_s}s; stderr:\n{self.stderr[-3000:]}") from None
        if raw is None:
            raise AssertionError(f"engine closed stdout (exit {self.proc.poll()}); stderr:\n{self.stderr[-3000:]}")
        return json.loads(raw)  # every stdout line must be JSON

    def send_raw(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def call(self, op: str, params: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Send one request; return (final response, events for it in order)."""
        self._next_id += 1
        rid = f"r{self._next_id}"
        self.send_raw(json.dumps({"id": rid, "op": op, "params": params or {}}))
        events: list[dict[str, Any]] = []
        while True:
            msg = self.read_line()
            assert msg.get("id") == rid, f"response for another id: {msg}"
            _check_answer(op, msg)
            if "event" in msg:
                events.append(msg)
                continue
            return msg, events

    def ok(self, op: str, params: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        msg, events = self.call(op, params)
        assert msg["ok"] is True, f"{op} failed: {msg}"
        return msg["result"], events

    def error(self, op: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        msg, _ = self.call(op, params)
        assert msg["ok"] is False, f"{op} unexpectedly succeeded: {msg}"
        assert set(msg["error"]) <= {"type", "message", "hint"}
        return msg["error"]

    def wait(self, timeout_s: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def _assert_conforms(what: str, violations: list[Violation]) -> None:
    found = [f"{v.pointer or '/'} ({v.keyword}): {v.value!r}"[:300] for v in violations]
    assert not found, f"{what} does not match schemas/engine: {found}"


def _check_answer(op: str, msg: dict[str, Any]) -> None:
    """An event, a success or a failure line, as protocol.json and <op>.json describe it."""
    schemas = engine_schemas()
    if "event" in msg:
        _assert_conforms(f"{op} event line", schemas.validate("protocol.json#/$defs/event", msg))
        if op in ENGINE_OPS:
            _assert_conforms(f"{op} {msg['event']} data", event_violations(op, msg["event"], msg["data"]))
    elif msg.get("ok") is True:
        _assert_conforms(f"{op} success line", schemas.validate("protocol.json#/$defs/success", msg))
        if op in ENGINE_OPS:
            _assert_conforms(f"{op} result", result_violations(op, msg["result"]))
    else:
        _assert_conforms(f"{op} failure line", schemas.validate("protocol.json#/$defs/failure", msg))


@pytest.fixture(scope="session")
def preset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalpipe_engine.presets import write_preset_dir

    return write_preset_dir(tmp_path_factory.mktemp("tiny-starcoder2"), seed=0)


@pytest.fixture(scope="module")
def engine() -> Iterator[EngineProcess]:
    """One engine per test module, with the preset loaded."""
    proc = EngineProcess()
    proc.ok("load", {"model": PRESET, "seed": 0})
    yield proc
    proc.close()
