"""The engine as the TypeScript side sees it: a real `python -m evalpipe_engine serve` process driven over stdio."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import PRESET, EngineProcess

from evalpipe_engine import ENGINE_VERSION, PROTOCOL_VERSION

CUDA = torch.cuda.is_available()
PY_PROMPT = 'def fibonacci(n: int) -> list[int]:\n    """Return the first n Fibonacci numbers."""\n'


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- life cycle ----------------------------------------------------------------------------------------------------


def test_ready_info_and_shutdown_exit_zero() -> None:
    proc = EngineProcess()
    assert proc.ready == {
        "event": "ready",
        "data": {"protocol": PROTOCOL_VERSION, "engine_version": ENGINE_VERSION, "pid": proc.proc.pid},
    }
    info, _ = proc.ok("info")
    assert info["engine_version"] == ENGINE_VERSION and info["protocol"] == PROTOCOL_VERSION
    assert info["torch"] and info["transformers"] and info["python"].count(".") == 2
    assert info["device"]["type"] in ("cpu", "cuda") and info["model"] is None
    for op in ("score", "generate", "bench"):
        err = proc.error(op, {})
        assert err["type"] == "not_loaded" and op in err["message"], err
    result, _ = proc.ok("shutdown")
    assert result == {}
    assert proc.wait() == 0
    # Library noise (transformers warnings, prints) must never reach stdout: the pump saw only JSON lines.
    assert "shutdown requested" in proc.stderr


def test_eof_on_stdin_exits_zero() -> None:
    proc = EngineProcess()
    proc.ok("load", {"model": PRESET})
    assert proc.proc.stdin is not None
    proc.proc.stdin.close()
    assert proc.wait() == 0
    assert "stdin closed" in proc.stderr


# -- load ------------------------------------------------------------------------------------------------------------


def test_load_preset_reports_facts_and_provenance(engine: EngineProcess, preset_dir: Path) -> None:
    result, _ = engine.ok("load", {"model": PRESET, "seed": 0})
    assert result["source"] == "preset" and result["model_id"] == PRESET and result["seed"] == 0
    assert result["architecture"] == "Starcoder2ForCausalLM"
    assert result["max_position_embeddings"] == 512 and result["sliding_window"] == 64
    assert result["bos_token_id"] == 0 and result["eos_token_id"] == 0
    assert result["quant"] == "fp32" and result["attn"] == "sdpa" and result["dtype"] == "float32"
    assert result["n_params"] > 0 and result["weight_bytes"] == 4 * result["n_params"]
    # Same seed -> the very bytes write_preset_dir produces; another seed -> other weights.
    assert result["weights_sha256"] == _sha256(preset_dir / "model.safetensors")
    other, _ = engine.ok("load", {"model": PRESET, "seed": 1})
    assert other["weights_sha256"] != result["weights_sha256"]
    info, _ = engine.ok("info")
    assert info["model"]["weights_sha256"] == other["weights_sha256"]
    engine.ok("load", {"model": PRESET, "seed": 0})


def test_load_local_directory_matches_preset(engine: EngineProcess, preset_dir: Path) -> None:
    local, _ = engine.ok("load", {"model": str(preset_dir), "attn": "eager"})
    assert local["source"] == "local" and local["model_id"] == str(preset_dir.resolve())
    assert local["revision"] is None and local["attn"] == "eager"
    rows = [{"index": 0, "text": PY_PROMPT}]
    from_dir, _ = engine.ok("score", {"rows": rows})
    engine.ok("load", {"model": PRESET})
    from_preset, _ = engine.ok("score", {"rows": rows})
    assert from_dir["rows"][0]["nll_sum"] == pytest.approx(from_preset["rows"][0]["nll_sum"], rel=1e-6)


def test_load_errors_are_typed_and_name_the_problem(engine: EngineProcess, preset_dir: Path, tmp_path: Path) -> None:
    err = engine.error("load", {"model": "/no/such/model-dir"})
    assert err["type"] == "not_found" and "/no/such/model-dir" in err["message"] and PRESET in err["hint"]

    err = engine.error("load", {"model": "preset:huge"})
    assert err["type"] == "not_found" and PRESET in err["hint"]

    err = engine.error("load", {})
    assert err["type"] == "bad_request" and "model" in err["message"]

    err = engine.error("load", {"model": PRESET, "quant": "fp7"})
    assert err["type"] == "bad_request" and "fp7" in err["message"] and "nf4" in err["hint"]

    err = engine.error("load", {"model": PRESET, "modle": "x"})
    assert err["type"] == "bad_request" and "modle" in err["message"]

    # StarCoder2 checkpoints are served by the native engine (model.py), which has the quantized modes and flash
    for quant in ("int8", "nf4"):
        res, _ = engine.ok("load", {"model": PRESET, "quant": quant})
        assert res["backend"] == "NativeStarcoder2" and res["quant"] == quant, res
    res, _ = engine.ok("load", {"model": PRESET, "attn": "flash"})
    assert res["backend"] == "NativeStarcoder2" and res["attn"] == "flash", res
    # The HF transformers backend (forced with backend: hf) quantizes the model's own linears (hf_quant.py), and
    # has no flash attention.
    for quant in ("int8", "nf4", "fp8"):
        res, _ = engine.ok("load", {"model": PRESET, "quant": quant, "backend": "hf"})
        assert res["backend"] == "HfBackend" and res["quant"] == quant, res
        engine.ok("score", {"rows": [{"index": 0, "text": "x = 1\n"}]})
    err = engine.error("load", {"model": PRESET, "attn": "flash", "backend": "hf"})
    assert err["type"] == "unsupported" and "flash" in err["message"] and "native" in err["hint"]
    err = engine.error("load", {"model": PRESET, "backend": "tensorrt"})
    assert err["type"] == "bad_request" and "tensorrt" in err["message"] and "hf" in err["hint"]
    engine.ok("load", {"model": PRESET, "seed": 0})  # back to the module's default model

    # Hub ids: no network here and HF_HUB_OFFLINE=1, so the id is reported with a way out.
    err = engine.error("load", {"model": "no-such-org/no-such-model"})
    assert err["type"] == "not_found" and "no-such-org/no-such-model" in err["message"], err
    assert "HF_HUB_OFFLINE" in err["message"] and PRESET in err["hint"]

    truncated = tmp_path / "truncated"
    shutil.copytree(preset_dir, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    err = engine.error("load", {"model": str(truncated)})
    assert err["type"] == "not_found" and str(weights) in err["message"] and "truncated" in err["message"]

    garbage = tmp_path / "garbage"
    shutil.copytree(preset_dir, garbage)
    (garbage / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!" + b"\0" * 64)
    err = engine.error("load", {"model": str(garbage)})
    assert err["type"] == "not_found" and str(garbage / "model.safetensors") in err["message"]

    no_tok = tmp_path / "no-tokenizer"
    shutil.copytree(preset_dir, no_tok)
    (no_tok / "tokenizer.json").unlink()
    err = engine.error("load", {"model": str(no_tok)})
    assert err["type"] == "not_found" and "tokenizer.json" in err["message"]

    alien = tmp_path / "alien"
    shutil.copytree(preset_dir, alien)
    config = json.loads((alien / "config.json").read_text())
    config["model_type"] = "not-a-real-architecture"
    (alien / "config.json").write_text(json.dumps(config))
    err = engine.error("load", {"model": str(alien)})
    assert err["type"] == "unsupported" and "not-a-real-architecture" in err["message"]

    # The engine is still up and still has a usable model after all of that.
    engine.ok("load", {"model": PRESET})
    engine.ok("score", {"rows": [{"index": 0, "text": "x = 1\n"}]})


def test_non_starcoder2_architecture_loads_through_hf(engine: EngineProcess, preset_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    vocab = json.loads((preset_dir / "config.json").read_text())["vocab_size"]
    # GPT-2: an architecture the native engine does not implement (Llama, Qwen2 and Mistral now run natively)
    config = GPT2Config(
        vocab_size=vocab, n_embd=32, n_layer=1, n_head=2, n_positions=256, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    shutil.copy(preset_dir / "tokenizer.json", tmp_path / "gpt2" / "tokenizer.json")
    result, _ = engine.ok("load", {"model": str(tmp_path / "gpt2")})
    assert result["architecture"] == "GPT2LMHeadModel" and result["max_position_embeddings"] == 256
    assert result["backend"] == "HfBackend"
    scored, _ = engine.ok("score", {"rows": [{"index": 0, "text": PY_PROMPT}]})
    assert scored["rows"][0]["nll_sum"] > 0
    generated, _ = engine.ok("generate", {"requests": [{"key": "k", "prompt": PY_PROMPT}], "max_new_tokens": 5})
    assert generated == {"count": 1, "batch_rows": 1}
    err = engine.error("load", {"model": str(tmp_path / "gpt2"), "backend": "native"})
    assert err["type"] == "unsupported" and "GPT2LMHeadModel" in err["message"] and "hf" in err["hint"]
    engine.ok("load", {"model": PRESET})


# -- score -----------------------------------------------------------------------------------------------------------


def test_score_rows_windows_and_progress(engine: EngineProcess) -> None:
    long_text = "def f(x):\n    return x * 2 + 1\n" * 40
    rows = [{"index": 7, "text": PY_PROMPT}, {"index": 3, "text": long_text}, {"index": 9, "text": "é ü ✓\n"}]
    result, events = engine.ok("score", {"rows": rows, "max_length": 64, "stride": 48})
    assert [r["index"] for r in result["rows"]] == [7, 3, 9]
    assert result["max_length"] == 64 and result["stride"] == 48 and result["add_bos"] is True
    by_index = {r["index"]: r for r in result["rows"]}
    for row in rows:
        out = by_index[row["index"]]
        assert out["n_bytes"] == len(row["text"].encode("utf-8"))
        assert out["n_scored_tokens"] == out["n_tokens"] > 0  # with BOS every text token is scored once
        assert out["nll_sum"] > 0
    assert by_index[7]["n_windows"] == 1 and by_index[3]["n_windows"] > 1
    assert events and events[-1]["event"] == "progress"
    assert events[-1]["data"]["done"] == events[-1]["data"]["total"]

    no_bos, _ = engine.ok("score", {"rows": rows, "max_length": 64, "add_bos": False})
    for out in no_bos["rows"]:
        assert out["n_scored_tokens"] == out["n_tokens"] - 1


def test_score_bad_requests(engine: EngineProcess) -> None:
    err = engine.error("score", {"rows": [{"index": 0, "text": "ok"}, {"index": 5, "text": ""}]})
    assert err["type"] == "bad_request" and "row 5 is empty" in err["message"]
    err = engine.error("score", {"rows": [{"index": 2, "text": 42}]})
    assert err["type"] == "bad_request" and "row 2" in err["message"] and "string" in err["message"]
    err = engine.error("score", {"rows": [{"index": 0, "text": "a"}, {"index": 0, "text": "b"}]})
    assert err["type"] == "bad_request" and "twice" in err["message"]
    err = engine.error("score", {"rows": "not a list"})
    assert err["type"] == "bad_request" and "rows" in err["message"]
    err = engine.error("score", {"rows": [{"index": 0, "text": "a"}], "max_length": 4096})
    assert err["type"] == "bad_request" and "512" in err["message"]
    err = engine.error("score", {"rows": [{"index": 0, "text": "a"}], "max_length": 64, "stride": 65})
    assert err["type"] == "bad_request" and "stride" in err["message"]
    err = engine.error("score", {"rows": [{"index": 0, "text": "a"}], "stride": 0})
    assert err["type"] == "bad_request" and "stride" in err["message"]
    err = engine.error("score", {"rows": [], "windows": 3})
    assert err["type"] == "bad_request" and "windows" in err["message"]


# -- generate --------------------------------------------------------------------------------------------------------


def _generate(engine: EngineProcess, params: dict[str, object]) -> dict[tuple[str, int], dict[str, object]]:
    result, events = engine.ok("generate", params)
    partials = [e["data"] for e in events if e["event"] == "partial"]
    assert result["count"] == len(partials) and result["batch_rows"] >= 1
    return {(p["key"], p["sample_index"]): p for p in partials}


def test_generate_greedy_is_reproducible_and_bounded(engine: EngineProcess) -> None:
    params = {
        "requests": [{"key": "a", "prompt": PY_PROMPT}, {"key": "b", "prompt": "class Stack:\n"}],
        "n": 1,
        "temperature": 0,
        "max_new_tokens": 12,
        "stop": [],
    }
    first = _generate(engine, params)
    assert set(first) == {("a", 0), ("b", 0)}
    assert first == _generate(engine, params)
    for sample in first.values():
        assert 1 <= sample["n_new_tokens"] <= 12
        assert sample["finish_reason"] in ("length", "eos")
        if sample["finish_reason"] == "length":
            assert sample["n_new_tokens"] == 12
    err = engine.error("generate", {**params, "n": 3})
    assert err["type"] == "bad_request" and "greedy" in err["message"]


def test_generate_sampling_reproducible_per_key_and_index(engine: EngineProcess) -> None:
    base = {"n": 3, "temperature": 1.0, "top_p": 0.95, "max_new_tokens": 16, "seed": 11, "stop": []}
    reqs = [{"key": "HumanEval/0", "prompt": PY_PROMPT}, {"key": "HumanEval/1", "prompt": "import os\n"}]
    first = _generate(engine, {**base, "requests": reqs})
    assert len(first) == 6
    assert first == _generate(engine, {**base, "requests": reqs})
    # Each (key, index) stands alone: order of requests, other keys and which indices are asked do not matter.
    reordered = _generate(engine, {**base, "requests": reqs[::-1]})
    assert reordered == first
    alone = _generate(engine, {**base, "requests": [{**reqs[0], "samples": [2]}]})
    assert alone[("HumanEval/0", 2)] == first[("HumanEval/0", 2)]
    texts = {s["completion"] for s in first.values()}
    assert len(texts) > 1, "samples should differ from one another"
    other_seed = _generate(engine, {**base, "seed": 12, "requests": reqs})
    assert other_seed != first


def test_generate_cuts_at_first_stop_sequence(engine: EngineProcess) -> None:
    base = {"requests": [{"key": "k", "prompt": PY_PROMPT}], "n": 1, "temperature": 0.7, "seed": 3}
    free = _generate(engine, {**base, "max_new_tokens": 60, "stop": []})[("k", 0)]
    text = free["completion"]
    assert isinstance(text, str) and len(text) > 12
    stop = text[8:11]
    expected = text[: text.index(stop)]
    cut = _generate(engine, {**base, "max_new_tokens": 60, "stop": ["never-seen-stop", stop]})[("k", 0)]
    assert cut["finish_reason"] == "stop" and cut["stop_sequence"] == stop
    assert cut["completion"] == expected
    assert cut["n_new_tokens"] <= free["n_new_tokens"]


def test_generate_default_stop_list_and_eos(engine: EngineProcess) -> None:
    out = _generate(
        engine,
        {
            "requests": [{"key": f"t{i}", "prompt": PY_PROMPT + " " * i} for i in range(4)],
            "n": 4,
            "temperature": 1.0,
            "max_new_tokens": 80,
            "seed": 0,
        },
    )
    assert len(out) == 16
    for sample in out.values():
        text = sample["completion"]
        assert isinstance(text, str)
        for s in ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>", "<|endoftext|>"):
            assert s not in text
        if sample["finish_reason"] == "stop":
            assert sample["stop_sequence"] in (
                "\nclass",
                "\ndef",
                "\n#",
                "\n@",
                "\nprint",
                "\nif",
                "\n```",
                "<file_sep>",
            )


def test_generate_bad_requests(engine: EngineProcess) -> None:
    good = {"requests": [{"key": "k", "prompt": "x"}], "n": 1, "temperature": 0.5, "max_new_tokens": 4}
    cases = [
        ({**good, "top_p": 0}, "top_p"),
        ({**good, "temperature": -1}, "temperature"),
        ({**good, "n": 0}, "n = 0"),
        ({**good, "max_new_tokens": 0}, "max_new_tokens"),
        ({**good, "stop": "\n"}, "stop"),
        ({**good, "stop": [""]}, "stop"),
        ({**good, "requests": [{"key": "k", "prompt": ""}]}, "empty"),
        ({**good, "requests": [{"key": "k", "prompt": "a"}, {"key": "k", "prompt": "b"}]}, "twice"),
        ({**good, "requests": [{"key": "k", "prompt": 3}]}, "prompt"),
        ({**good, "requests": [{"key": "k", "prompt": "a", "samples": [-1]}]}, "samples"),
        ({**good, "beams": 4}, "beams"),
    ]
    for params, needle in cases:
        err = engine.error("generate", params)
        assert err["type"] == "bad_request" and needle in err["message"], (params, err)


def test_generate_prompt_too_long_is_that_prompts_result(engine: EngineProcess) -> None:
    params = {
        "requests": [{"key": "long", "prompt": "a " * 600}, {"key": "short", "prompt": "def f(x):\n"}],
        "n": 2,
        "temperature": 0.5,
        "max_new_tokens": 4,
        "seed": 1,
    }
    result, events = engine.ok("generate", params)
    samples = {(e["data"]["key"], e["data"]["sample_index"]): e["data"] for e in events if e["event"] == "partial"}
    assert result["count"] == 4 and len(samples) == 4
    for index in (0, 1):
        long = samples[("long", index)]
        assert long["finish_reason"] == "prompt_too_long" and long["completion"] == "" and long["n_new_tokens"] == 0
        assert long["n_prompt_tokens"] >= 512
        assert samples[("short", index)]["finish_reason"] in ("stop", "eos", "length")


# -- protocol errors -------------------------------------------------------------------------------------------------


def test_protocol_errors_keep_the_engine_up(engine: EngineProcess) -> None:
    err = engine.error("teleport", {})
    assert err["type"] == "bad_request" and "teleport" in err["message"] and "score" in err["hint"]

    engine.send_raw("{this is not json")
    msg = engine.read_line()
    assert msg["id"] is None and msg["ok"] is False and msg["error"]["type"] == "bad_request"
    assert "malformed JSON" in msg["error"]["message"]

    engine.send_raw(json.dumps({"op": "info"}))
    msg = engine.read_line()
    assert msg["id"] is None and msg["error"]["type"] == "bad_request" and "id" in msg["error"]["message"]

    engine.send_raw(json.dumps({"id": "p", "op": "info", "params": [1, 2]}))
    msg = engine.read_line()
    assert msg["id"] == "p" and msg["error"]["type"] == "bad_request" and "params" in msg["error"]["message"]

    info, _ = engine.ok("info")
    assert info["model"] is not None


def test_oom_is_typed_and_the_server_carries_on() -> None:
    """In-process: an op that runs out of memory answers `oom`; the next request is served."""
    from evalpipe_engine import server as srv

    def op_oom(server: srv.Server, params: dict[str, object], emit: object) -> dict[str, object]:
        raise MemoryError("cannot allocate 1 TiB")

    out = io.StringIO()
    s = srv.Server(out)
    srv.OPS["test_oom"] = op_oom
    try:
        assert s.handle_line(json.dumps({"id": "x", "op": "test_oom"}))
        assert s.handle_line(json.dumps({"id": "y", "op": "info"}))
        assert not s.handle_line(json.dumps({"id": "z", "op": "shutdown"}))
    finally:
        del srv.OPS["test_oom"]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["id"] == "x" and lines[0]["error"]["type"] == "oom" and "1 TiB" in lines[0]["error"]["message"]
    assert lines[1]["id"] == "y" and lines[1]["ok"] is True
    assert lines[2] == {"id": "z", "ok": True, "result": {}}


# -- on a GPU --------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_engine_matches_cpu(engine: EngineProcess) -> None:
    rows = [
        {"index": 0, "text": PY_PROMPT},
        {"index": 1, "text": "def f(x):\n    return x * 2 + 1\n" * 40},
        {"index": 2, "text": "é ü ✓\n"},
    ]
    score = {"rows": rows, "max_length": 128, "stride": 100, "token_budget": 256}
    engine.ok("load", {"model": PRESET})
    cpu, _ = engine.ok("score", score)

    gpu = EngineProcess(gpu=True)
    try:
        info, _ = gpu.ok("info")
        assert info["device"]["type"] == "cuda" and info["device"]["name"] and info["device"]["total_gib"] > 1
        assert info["device"]["capability"].count(".") == 1
        default, _ = gpu.ok("load", {"model": PRESET})
        assert default["device"].startswith("cuda") and default["quant"] == "bf16" and default["dtype"] == "bfloat16"
        bf16, _ = gpu.ok("score", score)
        for g, c in zip(bf16["rows"], cpu["rows"], strict=True):
            assert g["n_scored_tokens"] == c["n_scored_tokens"] and g["n_windows"] == c["n_windows"]
            assert g["nll_sum"] == pytest.approx(c["nll_sum"], rel=3e-2)
        for attn in ("sdpa", "eager"):
            gpu.ok("load", {"model": PRESET, "quant": "fp32", "attn": attn})
            fp32, _ = gpu.ok("score", score)
            for g, c in zip(fp32["rows"], cpu["rows"], strict=True):
                assert g["nll_sum"] == pytest.approx(c["nll_sum"], rel=1e-4), attn
        gpu.ok("load", {"model": PRESET, "quant": "fp16"})
        gpu.ok("score", score)
        params = {
            "requests": [{"key": "a", "prompt": PY_PROMPT}, {"key": "b", "prompt": "import os\n"}],
            "n": 4,
            "temperature": 0.8,
            "top_p": 0.95,
            "max_new_tokens": 40,
            "seed": 2,
        }
        first, _ = gpu.ok("generate", params)
        assert first["count"] == 8
        runs = [[e["data"] for e in gpu.call("generate", params)[1]] for _ in range(2)]
        assert len(runs[0]) == 8 and runs[0] == runs[1]
        for backend in ("native", "hf"):
            loaded, _ = gpu.ok("load", {"model": PRESET, "quant": "bf16", "backend": backend})
            assert loaded["device"].startswith("cuda")
            for g, c in zip(gpu.ok("score", score)[0]["rows"], cpu["rows"], strict=True):
                assert g["nll_sum"] == pytest.approx(c["nll_sum"], rel=3e-2), backend
            sampled = [e["data"] for e in gpu.call("generate", params)[1]]
            assert len(sampled) == 8 and all(s["finish_reason"] in ("stop", "eos", "length") for s in sampled)
        err = gpu.error("load", {"model": PRESET, "attn": "flash", "backend": "hf"})
        assert err["type"] == "unsupported"
        gpu.ok("shutdown")
        assert gpu.wait() == 0
    finally:
        gpu.close()


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_real_cuda_oom_is_typed_and_memory_is_released() -> None:
    from evalpipe_engine import server as srv

    def op_alloc(server: srv.Server, params: dict[str, object], emit: object) -> dict[str, object]:
        keep = torch.empty(1 << 28, device="cuda")  # 1 GiB that must be released after the failure
        huge = torch.empty(1 << 50, dtype=torch.uint8, device="cuda")  # 1 PiB: a genuine CUDA OOM
        return {"n": keep.numel() + huge.numel()}

    out = io.StringIO()
    s = srv.Server(out)
    srv.OPS["test_alloc"] = op_alloc
    try:
        before = torch.cuda.memory_allocated()
        assert s.handle_line(json.dumps({"id": "x", "op": "test_alloc"}))
        assert torch.cuda.memory_allocated() == before
        assert s.handle_line(json.dumps({"id": "y", "op": "info"}))
    finally:
        del srv.OPS["test_alloc"]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["error"]["type"] == "oom" and "OutOfMemoryError" in lines[0]["error"]["message"]
    assert lines[1]["ok"] is True and lines[1]["result"]["device"]["type"] == "cuda"
