"""`python -m evalpipe_engine http`: the real server in a subprocess on a free loopback port, called over real HTTP,
its answers checked against the engine's own generate and score ops run in this process on the same preset."""

from __future__ import annotations

import http.client
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import CUDA_DIR, PRESET, REPO_ROOT

from evalpipe_engine.generation import generate
from evalpipe_engine.loading import LoadedModel, load_model
from evalpipe_engine.scoring import plan_windows, score

KEY_ENV = "EVALPIPE_TEST_HTTP_KEY"
KEY = f"sk-test-{secrets.token_hex(8)}"
PROMPTS = ["def f(x):\n    return x", "x = [", "for i in range("]
TEXT = 'def fibonacci(n: int) -> list[int]:\n    """Return the first n Fibonacci numbers."""\n    out = [0, 1]\n'


class Server:
    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(CUDA_DIR) + os.pathsep + env.get("PYTHONPATH", "")
        env.update({"HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", KEY_ENV: KEY})
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "evalpipe_engine",
                "http",
                "--port",
                "0",
                "--model",
                PRESET,
                "--device",
                "cpu",
                "--api-key-env",
                KEY_ENV,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO_ROOT,
        )
        self.lines: list[str] = []
        found: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(found,), daemon=True).start()
        try:
            url = found.get(timeout=180)
        except queue.Empty:
            url = None
        if url is None:
            self.proc.kill()
            raise AssertionError(f"the server did not start; stderr:\n{self.stderr[-3000:]}")
        self.host, port = url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)

    def _pump(self, found: queue.Queue[str | None]) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if line.startswith("listening on "):
                found.put(line.split()[-1])
        found.put(None)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def request(
        self, method: str, path: str, body: Any = None, *, key: str | None = KEY, raw: bytes | None = None
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8")
        conn.close()
        head = {k.lower(): v for k, v in response.getheaders()}
        if head.get("content-type", "").startswith("text/event-stream"):
            return response.status, head, _events(text)
        return response.status, head, json.loads(text) if text else None

    def ok(self, path: str, body: dict[str, Any]) -> Any:
        status, _, out = self.request("POST", path, body)
        assert status == 200, out
        return out

    def error(self, path: str, body: Any, status: int, **kwargs: Any) -> dict[str, Any]:
        got, _, out = self.request("POST", path, body, **kwargs)
        assert got == status, out
        assert set(out) == {"error"} and set(out["error"]) == {"message", "type", "param", "code"}, out
        return out["error"]


def _events(text: str) -> list[Any]:
    """The `data:` payloads of an event stream, in order; the last must be [DONE]."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert all(b.startswith("data: ") for b in blocks), blocks
    payloads = [b.removeprefix("data: ") for b in blocks]
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def native() -> LoadedModel:
    return load_model({"model": PRESET, "seed": 0, "device": "cpu"})


def native_generate(loaded: LoadedModel, requests: list[dict[str, Any]], **params: Any) -> dict[tuple[str, int], Any]:
    out: dict[tuple[str, int], Any] = {}

    def emit(event: str, data: dict[str, Any]) -> None:
        out[(data["key"], data["sample_index"])] = data

    generate(loaded, {"requests": requests, **params}, emit)
    return out


def completion(server: Server, **body: Any) -> dict[str, Any]:
    return server.ok("/v1/completions", {"model": PRESET, **body})


# -- the model, health, errors ----------------------------------------------------------------------------------


def test_models_health_and_server_header(server: Server) -> None:
    status, head, out = server.request("GET", "/v1/models")
    assert status == 200 and head["server"].startswith("evalpipe-engine/"), head
    assert out["object"] == "list" and len(out["data"]) == 1
    card = out["data"][0]
    assert card["id"] == PRESET and card["object"] == "model" and card["owned_by"] == "evalpipe"
    assert card["root"] == PRESET and card["max_model_len"] == 512 and isinstance(card["created"], int)
    assert card["evalpipe"]["backend"] == "NativeStarcoder2" and card["evalpipe"]["deterministic"] is True
    status, _, out = server.request("GET", "/health", key=None)
    assert status == 200 and out["status"] == "ok"


def test_bearer_token_is_required_and_never_echoed(server: Server) -> None:
    for key in (None, "wrong", KEY + "x"):
        err = server.error("/v1/completions", {"prompt": "x", "max_tokens": 1}, 401, key=key)
        assert err["code"] == "invalid_api_key" and "Authorization: Bearer" in err["message"]
        assert KEY not in err["message"]
    status, _, _ = server.request("GET", "/v1/models", key=None)
    assert status == 401
    assert KEY not in server.stderr


def test_bad_inputs_get_one_clear_error(server: Server) -> None:
    assert server.error("/v1/completions", {"model": "gpt-4", "prompt": "x"}, 404)["code"] == "model_not_found"
    assert server.error("/v1/nothing", {}, 404)["code"] == "unknown_url"
    err = server.error("/v1/completions", {"prompt": "x", "max_tokns": 3}, 400)
    assert err["param"] == "max_tokns" and "unknown field" in err["message"]
    err = server.error("/v1/completions", {"prompt": "x", "max_tokens": 0}, 400)
    assert "echo" in err["message"] and err["param"] == "max_tokens"
    assert server.error("/v1/completions", {"prompt": "x", "logprobs": 6}, 400)["param"] == "logprobs"
    assert server.error("/v1/completions", {"prompt": "x", "temperature": -1}, 400)["param"] == "temperature"
    assert server.error("/v1/completions", {"prompt": [3, 9999]}, 400)["message"].endswith("[0, 398)")
    assert server.error("/v1/completions", {"prompt": ""}, 400)["message"] == "prompt is empty: it has no tokens"
    assert server.error("/v1/completions", {"prompt": "x", "frequency_penalty": 0.5}, 400)["code"] == (
        "unsupported_parameter"
    )
    assert "not JSON" in server.error("/v1/completions", None, 400, raw=b"{nope")["message"]


def test_context_overflow_says_by_how_much(server: Server) -> None:
    err = server.error("/v1/completions", {"prompt": [5] * 500, "max_tokens": 100}, 400)
    assert err["code"] == "context_length_exceeded"
    assert "maximum context length is 512 tokens" in err["message"]
    assert "you requested 600 tokens (500 in the prompt, 100 in the completion)" in err["message"]
    err = server.error("/v1/completions", {"prompt": [5] * 513, "echo": True, "max_tokens": 0}, 400)
    assert "513 in the prompt" in err["message"]
    err = server.error("/v1/completions", {"prompt": [5] * 512}, 400)  # no max_tokens: no room left
    assert "has 512 tokens, which leaves no room" in err["message"]


# -- generation ------------------------------------------------------------------------------------------------


def test_greedy_equals_the_native_generate_op(server: Server, native: LoadedModel) -> None:
    stop = ["\nclass", "\ndef", "\n#"]
    expected = native_generate(
        native,
        [{"key": str(i), "prompt": p} for i, p in enumerate(PROMPTS)],
        max_new_tokens=24,
        stop=stop,
        temperature=0,
    )
    for i, prompt in enumerate(PROMPTS):
        out = completion(server, prompt=prompt, max_tokens=24, stop=stop, temperature=0)
        (choice,) = out["choices"]
        assert choice["text"] == expected[(str(i), 0)]["completion"]
        assert choice["finish_reason"] == "length" and out["usage"]["completion_tokens"] == 24
        assert out["usage"]["prompt_tokens"] == expected[(str(i), 0)]["n_prompt_tokens"]
    together = completion(server, prompt=PROMPTS, max_tokens=24, stop=stop, temperature=0, n=2)
    assert [c["index"] for c in together["choices"]] == list(range(6))
    for c in together["choices"]:  # greedy has one answer: both choices of a prompt are it
        assert c["text"] == expected[(str(c["index"] // 2), 0)]["completion"]


def test_stop_strings_cut_as_the_generate_op_cuts(server: Server, native: LoadedModel) -> None:
    prompt, stop = PROMPTS[2], ["pim", "mpi"]  # greedy: "impimpimp..."
    expected = native_generate(native, [{"key": "0", "prompt": prompt}], max_new_tokens=24, stop=stop)[("0", 0)]
    (choice,) = completion(server, prompt=prompt, max_tokens=24, stop=stop, temperature=0)["choices"]
    assert choice["text"] == expected["completion"] == "i"
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == "mpi"
    (choice,) = completion(server, prompt=prompt, max_tokens=24, stop="impimpimp", temperature=0)["choices"]
    assert choice["text"] == "" and choice["stop_reason"] == "impimpimp"


def test_seeded_sampling_is_reproducible_and_native(server: Server, native: LoadedModel) -> None:
    body = {"prompt": PROMPTS[1], "n": 3, "temperature": 0.9, "top_p": 0.95, "max_tokens": 16, "seed": 7}
    first = completion(server, **body)
    assert completion(server, **body)["choices"] == first["choices"]
    texts = [c["text"] for c in first["choices"]]
    assert len(set(texts)) > 1, texts  # three samples, not one repeated
    params = {"n": 3, "temperature": 0.9, "top_p": 0.95, "max_new_tokens": 16, "seed": 7, "stop": []}
    expected = native_generate(native, [{"key": "0", "prompt": PROMPTS[1]}], **params)
    assert texts == [expected[("0", i)]["completion"] for i in range(3)]
    keyed = completion(server, **body, seed_keys=["HumanEval/7"])["choices"]
    expected = native_generate(native, [{"key": "HumanEval/7", "prompt": PROMPTS[1]}], **params)
    assert [c["text"] for c in keyed] == [expected[("HumanEval/7", i)]["completion"] for i in range(3)]


def test_ignore_eos_runs_every_sample_to_max_tokens(server: Server) -> None:
    # near-uniform sampling over the tiny vocabulary: EOS comes early in most of these seeded samples
    body = {"prompt": PROMPTS[1], "max_tokens": 400, "temperature": 1000, "n": 4, "seed": 1}
    plain = completion(server, **body)
    assert any(c["finish_reason"] == "stop" for c in plain["choices"]) and plain["usage"]["completion_tokens"] < 1600
    ignored = completion(server, **body, ignore_eos=True)
    assert [c["finish_reason"] for c in ignored["choices"]] == ["length"] * 4
    assert ignored["usage"]["completion_tokens"] == 4 * 400


def test_streaming_reassembles_to_the_plain_response(server: Server) -> None:
    body = {"prompt": PROMPTS, "max_tokens": 20, "temperature": 0.8, "seed": 3, "n": 2, "stop": ["[ [ [ [ ["]}
    plain = completion(server, **body, logprobs=1)
    status, head, chunks = server.request(
        "POST", "/v1/completions", {**body, "logprobs": 1, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert status == 200 and head["content-type"].startswith("text/event-stream")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]
    texts: dict[int, str] = {}
    tokens: dict[int, list[str]] = {}
    finish: dict[int, str] = {}
    for chunk in chunks[:-1]:
        assert chunk["object"] == "text_completion" and chunk["model"] == PRESET
        (part,) = chunk["choices"]
        texts[part["index"]] = texts.get(part["index"], "") + part["text"]
        tokens.setdefault(part["index"], []).extend(part["logprobs"]["tokens"])
        if part["finish_reason"] is not None:
            assert part["index"] not in finish
            finish[part["index"]] = part["finish_reason"]
    for choice in plain["choices"]:
        assert texts[choice["index"]] == choice["text"]
        assert tokens[choice["index"]] == choice["logprobs"]["tokens"]
        assert finish[choice["index"]] == choice["finish_reason"]
    # An ASCII completion streams in several pieces, not in one at the end.
    ascii_body = {"prompt": PROMPTS[0], "max_tokens": 12, "stream": True, "temperature": 0, "ignore_eos": True}
    _, _, chunks = server.request("POST", "/v1/completions", ascii_body)
    text = "".join(c["choices"][0]["text"] for c in chunks)
    assert text.isascii() and len([c for c in chunks if c["choices"][0]["text"]]) > 3, text


def test_a_streamed_request_sends_one_chunk_per_drawn_token(server: Server) -> None:
    # As vLLM streams: k drawn tokens give k chunks (text "" where no text is final yet), then the closing chunk.
    for k in (1, 7, 33):
        body = {"prompt": PROMPTS[0], "max_tokens": k, "ignore_eos": True, "temperature": 0}
        plain = completion(server, **body)
        _, _, chunks = server.request("POST", "/v1/completions", {**body, "stream": True})
        assert len(chunks) == k + 1
        assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * k + ["length"]
        assert "".join(c["choices"][0]["text"] for c in chunks) == plain["choices"][0]["text"]
    # With EOS: one chunk per drawn token, the EOS's included (it is counted in usage as well).
    body = {"prompt": PROMPTS[1], "max_tokens": 400, "temperature": 1000, "n": 3, "seed": 1}
    plain = completion(server, **body)
    _, _, chunks = server.request(
        "POST", "/v1/completions", {**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert chunks[-1]["usage"] == plain["usage"]
    per_choice = [[c for c in chunks[:-1] if c["choices"][0]["index"] == i] for i in range(3)]
    assert sum(len(c) - 1 for c in per_choice) == plain["usage"]["completion_tokens"]
    for i, mine in enumerate(per_choice):
        assert "".join(c["choices"][0]["text"] for c in mine) == plain["choices"][i]["text"]


def test_the_worker_admits_jobs_oldest_first_within_max_batch_rows() -> None:
    # No timing involved: jobs are queued before the worker thread exists, and next_batch is called directly.
    from evalpipe_engine.generation import PromptSamples
    from evalpipe_engine.http_server.jobs import Job
    from evalpipe_engine.http_server.worker import EngineWorker

    def job(rows: int) -> Job:
        made = Job(0.0, 1.0, ())
        made.samples.append(PromptSamples("0", [1, 2], list(range(rows)), 4, 0))
        return made

    worker = EngineWorker(None, max_batch_rows=4, batch_wait_s=0.0)  # type: ignore[arg-type]
    jobs = [job(r) for r in (1, 2, 3, 1, 6, 1, 1)]
    jobs[5].cancelled.set()
    for j in jobs:
        worker.submit(j)
    batches = []
    while True:
        batch = worker.next_batch(0.0)
        batches.append([jobs.index(j) for j in batch])
        if batches[-1][-1] == 6:
            break
    # 0+1 fit (3 rows), 2 does not: it stays first and goes next with 3 (4 rows); 4 exceeds the limit alone and goes
    # alone; 5 was cancelled; 6 last. Every job goes in arrival order, none overtaken by a later one.
    assert batches == [[0, 1], [2, 3], [4], [6]]
    worker.stop(0.0)
    assert worker.next_batch(0.0) == []


def test_concurrent_requests_all_succeed_with_the_sequential_answers(server: Server) -> None:
    bodies = [{"prompt": PROMPTS[i % 3], "max_tokens": 16 + i, "temperature": 0} for i in range(8)]
    sequential = [completion(server, **b)["choices"][0]["text"] for b in bodies]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda b: completion(server, **b)["choices"][0]["text"], bodies * 2))
    assert together == sequential * 2


# -- log-probabilities ------------------------------------------------------------------------------------------


def test_echo_logprobs_sum_to_the_score_ops_nll_per_window(server: Server, native: LoadedModel) -> None:
    ids = [0, *native.tokenizer.encode(TEXT, add_special_tokens=False).ids]  # BOS as the score op puts it
    expected = score(native, {"rows": [{"index": 0, "text": TEXT}], "max_length": 24}, lambda e, d: None)
    nll = expected["rows"][0]["nll_sum"]
    total = 0.0
    windows = plan_windows(len(ids), 24, 24)
    assert len(windows) > 1
    for begin, end, first in windows:  # the client windows the text itself and sends token ids
        out = completion(server, prompt=ids[begin:end], echo=True, max_tokens=0, logprobs=0)
        (choice,) = out["choices"]
        lp = choice["logprobs"]["token_logprobs"]
        assert len(lp) == end - begin and lp[0] is None and choice["finish_reason"] == "length"
        assert choice["logprobs"]["top_logprobs"][0] is None and out["usage"]["completion_tokens"] == 0
        total -= sum(lp[first - begin :])
    assert total == pytest.approx(nll, rel=1e-6)
    # lm-evaluation-harness's loglikelihood request: echo, max_tokens 1, logprobs 1; it sums [ctxlen:-1].
    (choice,) = completion(server, prompt=ids[:20], echo=True, max_tokens=1, logprobs=1, temperature=0)["choices"]
    lp = choice["logprobs"]["token_logprobs"]
    assert len(lp) == 21 and lp[0] is None
    assert choice["text"].startswith(native.tokenizer.decode(ids[:20], skip_special_tokens=False))


def test_top_logprobs_are_the_models_most_likely_tokens(server: Server, native: LoadedModel) -> None:
    ids = native.tokenizer.encode(TEXT, add_special_tokens=False).ids[:12]
    body = {"prompt": ids, "echo": True, "max_tokens": 3, "logprobs": 3, "temperature": 0}
    (choice,) = completion(server, **body, return_tokens_as_token_ids=True)["choices"]
    logprobs = choice["logprobs"]
    assert logprobs["tokens"][:12] == [f"token_id:{t}" for t in ids] and len(logprobs["tokens"]) == 15
    full = torch.log_softmax(native.backend.logits(torch.tensor(ids)).double(), -1)  # type: ignore[attr-defined]
    for t in range(1, 12):
        top = logprobs["top_logprobs"][t]
        assert top[f"token_id:{ids[t]}"] == logprobs["token_logprobs"][t]  # the chosen token first, its own value
        values, best = torch.topk(full[t - 1], 3)
        for token, value in zip(best.tolist(), values.tolist(), strict=True):
            assert top[f"token_id:{token}"] == pytest.approx(value, abs=1e-4)
    for t in range(12, 15):  # greedy: each drawn token is the most likely one
        top = logprobs["top_logprobs"][t]
        assert logprobs["token_logprobs"][t] == max(top.values())
    offsets = logprobs["text_offset"]
    assert offsets[0] == 0 and all(
        b - a == len(s) for a, b, s in zip(offsets[:-1], offsets[1:], logprobs["tokens"][:-1], strict=True)
    )


# -- tokenizer and chat -----------------------------------------------------------------------------------------


def test_tokenize_round_trip(server: Server, native: LoadedModel) -> None:
    out = server.ok("/tokenize", {"model": PRESET, "prompt": TEXT})
    assert out["tokens"] == native.tokenizer.encode(TEXT, add_special_tokens=False).ids
    assert out["count"] == len(out["tokens"]) and out["max_model_len"] == 512
    assert server.ok("/detokenize", {"tokens": out["tokens"]}) == {"prompt": TEXT}
    status, _, info = server.request("GET", "/tokenizer_info")
    assert status == 200 and info["eos_token"] == "<|endoftext|>" and info["chat_template"] is None
    assert server.error("/detokenize", {"tokens": [1, "2"]}, 400)["param"] == "tokens"


def test_chat_without_a_template_is_refused(server: Server) -> None:
    err = server.error("/v1/chat/completions", {"model": PRESET, "messages": [{"role": "user", "content": "hi"}]}, 400)
    assert err["code"] == "no_chat_template" and "/v1/completions" in err["message"]


def test_chat_template_of_a_checkpoint_is_rendered(preset_dir: Path, tmp_path: Path) -> None:
    from evalpipe_engine.http_server.chat import ChatTemplate

    for f in preset_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["chat_template"] = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    chat = ChatTemplate(tmp_path)
    assert chat.render([{"role": "user", "content": "hi"}]) == "<user>hi\n<assistant>"


# -- connections and shut-down ----------------------------------------------------------------------------------


def test_a_client_that_hangs_up_mid_stream_does_not_hurt_the_server(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    body = json.dumps({"prompt": PROMPTS[0], "max_tokens": 400, "stream": True}).encode()
    conn.request("POST", "/v1/completions", body=body, headers={"Authorization": f"Bearer {KEY}"})
    response = conn.getresponse()
    assert response.status == 200 and response.readline().startswith(b"data: ")
    conn.sock.close()  # type: ignore[union-attr]
    conn.close()
    assert completion(server, prompt=PROMPTS[1], max_tokens=4)["choices"][0]["text"]


def test_sigterm_stops_in_flight_work_and_exits_zero(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    body = json.dumps({"prompt": PROMPTS[0], "max_tokens": 480, "stream": True}).encode()
    conn.request("POST", "/v1/completions", body=body, headers={"Authorization": f"Bearer {KEY}"})
    response = conn.getresponse()
    assert response.status == 200 and response.readline().startswith(b"data: ")  # in flight
    server.proc.send_signal(signal.SIGTERM)
    rest = response.read().decode()  # the stream ends: finished, or an error chunk, then [DONE]
    conn.close()
    assert rest.rstrip().endswith("data: [DONE]"), rest[-500:]
    assert server.proc.wait(timeout=60) == 0
    assert "SIGTERM received: stopping" in server.stderr and "stopped" in server.stderr
