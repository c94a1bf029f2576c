"""The Llama family on the native engine (models/llama.py): Llama (with RoPE scalings), Qwen2 (q/k/v biases, tied
embeddings, a padded vocabulary) and Mistral (sliding window), tiny random configs on CPU against HF transformers'
own models on the same weights (the parity reference): fp32 logits within 1e-5 relative (Frobenius norm over all
positions), packed log-probs within 1e-5 absolute, perplexity within 1e-6 relative and greedy tokens identical;
every precision within sane bounds of fp32; the rope scalings' frequencies as transformers computes them;
refusals naming the config field; the backend choice; the presets and their BOS/EOS rules."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from evalpipe_engine.devtools.hf_reference import hf_reference_model
from evalpipe_engine.devtools.random_weights import random_state_dict
from evalpipe_engine.errors import ModelError, Unsupported
from evalpipe_engine.generation import generate
from evalpipe_engine.hf_backend import build_hf_backend
from evalpipe_engine.layers.rotary import RopeTables, parse_rope_scaling
from evalpipe_engine.loading import load_model, select_backend
from evalpipe_engine.models import LlamaConfig, NativeLlama, build_native_backend

TOL = 1e-5


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def tiny(family: str, **overrides: Any) -> LlamaConfig:
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}[family]
    d: dict[str, Any] = {
        "architectures": [arch],
        "model_type": family,
        "vocab_size": 203,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": family == "qwen2",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
    }
    if family == "llama":
        d["rope_scaling"] = {"type": "linear", "factor": 2.0}
    if family == "mistral":
        d["sliding_window"] = 16
    d.update(overrides)
    return LlamaConfig.from_dict(d)


FAMILIES = ["llama", "qwen2", "mistral"]


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request: pytest.FixtureRequest) -> tuple[LlamaConfig, dict[str, torch.Tensor], Any]:
    cfg = tiny(request.param)
    sd = random_state_dict(cfg, "cpu", torch.float32, seed=11)
    hf = hf_reference_model(cfg, sd, device="cpu", dtype=torch.float32, attn_implementation="eager")
    return cfg, sd, hf


def _seqs(vocab: int, lengths: tuple[int, ...], seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (n,), generator=g) for n in lengths]


@pytest.mark.parametrize("attn", ["eager", "sdpa", "flash"])
def test_fp32_logits_match_hf(pair, attn: str) -> None:
    cfg, sd, hf = pair
    model = NativeLlama.from_state_dict(cfg, sd, device="cpu", quant="fp32", attn=attn)
    for seq in _seqs(cfg.vocab_size, (41, 1, 17), seed=1):
        ref = hf(seq[None]).logits[0].float()
        ours = model.logits(seq)
        assert ours.shape == ref.shape
        assert rel(ours, ref) <= TOL, (cfg.family, attn, len(seq), rel(ours, ref))


def test_perplexity_and_greedy_tokens_match_hf(pair) -> None:
    cfg, sd, hf = pair
    model = NativeLlama.from_state_dict(cfg, sd, device="cpu", quant="fp32", attn="sdpa")
    model.chunk_rows = 5
    seqs = _seqs(cfg.vocab_size, (37, 2, 30), seed=3)
    for seq, lp in zip(seqs, model.target_logprobs(seqs), strict=True):
        ref = torch.log_softmax(hf(seq[None]).logits[0].float(), -1)[:-1].gather(1, seq[1:, None]).squeeze(1)
        assert torch.allclose(lp, ref, atol=1e-5, rtol=1e-5)
        ppl, ref_ppl = torch.exp(-lp.double().mean()), torch.exp(-ref.double().mean())
        assert abs(float(ppl / ref_ppl) - 1) <= 1e-6
    prompt = seqs[0][:12]
    seq, want = prompt, []  # HF's greedy choice by full recomputation (generate's EOS processors aside)
    for _ in range(20):
        want.append(int(hf(seq[None]).logits[0, -1].argmax()))
        seq = torch.cat([seq, torch.tensor([want[-1]])])
    dec = model.open_decoder(prompt, 1)
    logits, got = dec.first_logits, []
    for _ in range(20):
        tok = logits.argmax(-1)
        got.append(int(tok))
        logits = dec.step(tok)
    assert got == want


def test_the_window_and_the_scaling_are_honoured(pair) -> None:
    """Mistral's window and Llama's linear scaling change the logits (else parity would be vacuous)."""
    cfg, sd, _ = pair
    if cfg.family == "qwen2":
        pytest.skip("qwen2 has neither")
    plain_cfg = tiny(cfg.family, sliding_window=None, rope_scaling=None)
    seq = _seqs(cfg.vocab_size, (40,), seed=2)[0]
    a = NativeLlama.from_state_dict(cfg, sd, device="cpu", quant="fp32").logits(seq)
    b = NativeLlama.from_state_dict(plain_cfg, sd, device="cpu", quant="fp32").logits(seq)
    assert rel(a, b) > 1e-3


@pytest.mark.parametrize("quant", ["fp16", "bf16", "int8", "nf4", "fp8"])
def test_every_precision_stays_near_fp32(quant: str) -> None:
    cfg = tiny("qwen2")
    sd = random_state_dict(cfg, "cpu", torch.float32, seed=5)
    # sdpa: under TRITON_INTERPRET=1 the interpreter's bf16 tl.dot is broken (docs/quantization.md), so not flash
    ref_model = NativeLlama.from_state_dict(cfg, sd, device="cpu", quant="fp32", attn="sdpa")
    model = NativeLlama.from_state_dict(cfg, sd, device="cpu", quant=quant, attn="sdpa")
    seqs = _seqs(cfg.vocab_size, (30, 9), seed=4)
    ref = ref_model.target_logprobs(seqs)
    got = model.target_logprobs(seqs)
    for a, b in zip(got, ref, strict=True):
        assert torch.isfinite(a).all()
        assert (a - b).abs().max() < 0.05, (quant, (a - b).abs().max())
    dec = model.open_decoder(seqs[0][:10], 2)
    assert torch.isfinite(dec.step(torch.tensor([3, 4]))).all()


def test_decode_steps_equal_recomputation() -> None:
    cfg = tiny("mistral")  # window 16 < the 30 positions reached
    model = NativeLlama.random(cfg, device="cpu", quant="fp32", seed=2)
    prompts = _seqs(cfg.vocab_size, (14, 5), seed=6)
    dec = model.open_batch_decoder(prompts, [2, 1], capacity=40)
    seqs = [prompts[0], prompts[0], prompts[1]]
    logits = dec.first_logits
    for step in range(16):
        tok = torch.tensor([(7 * step + r) % cfg.vocab_size for r in range(3)])
        want = model.next_token_logits(seqs)
        assert rel(logits, want) <= TOL, step
        seqs = [torch.cat([s, t[None]]) for s, t in zip(seqs, tok, strict=True)]
        logits = dec.step(tok)


# ------------------------------------------------------------------------------------------------ rope scalings

SCALINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "linear": {"rope_type": "linear", "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0},
    "llama3": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    },
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64},
    "yarn-mscale": {
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 64,
        "mscale": 1.0,
        "mscale_all_dim": 0.5,
        "beta_fast": 16,
        "truncate": False,
    },
}


@pytest.mark.parametrize("name", list(SCALINGS))
def test_rope_frequencies_are_transformers(name: str) -> None:
    from transformers import LlamaConfig as HfLlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaling = SCALINGS[name]
    d = {"hidden_size": 64, "num_attention_heads": 2, "max_position_embeddings": 256, "rope_theta": 5000.0}
    theta, ours = parse_rope_scaling({**d, "rope_scaling": scaling or None}, "test")
    tables = RopeTables(32, theta, 256, torch.device("cpu"), ours)
    hf_cfg = HfLlamaConfig(**d, rope_scaling=scaling or None)
    kind = scaling.get("rope_type", "default")
    if kind == "default":
        inv = 1.0 / (5000.0 ** (torch.arange(0, 32, 2, dtype=torch.int64).float() / 32))
        factor = 1.0
    else:
        inv, factor = ROPE_INIT_FUNCTIONS[kind](hf_cfg, torch.device("cpu"))
    assert torch.equal(tables.inv_freq, inv), name
    assert tables.attention_factor == pytest.approx(factor, rel=1e-12)


@pytest.mark.parametrize("name", ["llama3", "yarn", "dynamic"])
def test_scaled_models_match_hf(name: str) -> None:
    cfg = tiny("llama", rope_scaling=SCALINGS[name])
    sd = random_state_dict(cfg, "cpu", torch.float32, seed=8)
    hf = hf_reference_model(cfg, sd, device="cpu", dtype=torch.float32, attn_implementation="eager")
    model = NativeLlama.from_state_dict(cfg, sd, device="cpu", quant="fp32")
    seq = _seqs(cfg.vocab_size, (90,), seed=9)[0]
    assert rel(model.logits(seq), hf(seq[None]).logits[0].float()) <= TOL


# ------------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("family", "overrides", "named"),
    [
        ("llama", {"attention_bias": True}, "attention_bias"),
        ("llama", {"mlp_bias": True}, "mlp_bias"),
        ("llama", {"hidden_act": "gelu"}, "hidden_act"),
        ("llama", {"rope_scaling": {"rope_type": "longrope", "factor": 2.0}}, "rope_scaling.rope_type"),
        ("llama", {"rope_scaling": {"type": "linear", "factor": 2.0, "foo": 1}}, "rope_scaling.foo"),
        ("llama", {"rope_scaling": {"type": "llama3", "factor": 8.0}}, "rope_scaling.low_freq_factor"),
        ("llama", {"rope_parameters": {"rope_type": "su", "rope_theta": 1e4}}, "rope_parameters.rope_type"),
        ("llama", {"partial_rotary_factor": 0.5}, "partial_rotary_factor"),
        ("qwen2", {"use_sliding_window": True}, "use_sliding_window"),
    ],
)
def test_unsupported_fields_are_refused_by_name(family: str, overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(ModelError, match=named.replace(".", r"\.")) as info:
        tiny(family, **overrides)
    assert info.value.error_type in ("unsupported", "bad_request")


def test_backend_choice(caplog: pytest.LogCaptureFixture) -> None:
    cpu = torch.device("cpu")
    for arch, mt in (("LlamaForCausalLM", "llama"), ("Qwen2ForCausalLM", "qwen2"), ("MistralForCausalLM", "mistral")):
        config = {**tiny(mt).to_hf_dict(), "architectures": [arch]}
        assert select_backend(config, "bf16", "sdpa", cpu) is build_native_backend
        assert select_backend(config, "bf16", "sdpa", cpu, "native") is build_native_backend
        assert select_backend(config, "bf16", "sdpa", cpu, "hf") is build_hf_backend
    gpt2 = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}
    with caplog.at_level(logging.INFO, logger="evalpipe_engine.loading"):
        assert select_backend(gpt2, "bf16", "sdpa", cpu) is build_hf_backend
    assert sum("GPT2LMHeadModel" in r.getMessage() and "HF transformers" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(Unsupported, match="GPT2LMHeadModel"):
        select_backend(gpt2, "bf16", "sdpa", cpu, "native")
    bad = {**tiny("llama").to_hf_dict(), "attention_bias": True}
    with pytest.raises(ModelError, match="attention_bias"):
        select_backend(bad, "bf16", "sdpa", cpu)


# ------------------------------------------------------------------------------------------------ presets


PRESET_RULES = {
    # preset: (score add_bos by default, generate add_bos by default)
    "tiny-llama": (True, True),
    "tiny-mistral": (True, True),
    "tiny-qwen2": (False, False),
}


@pytest.mark.parametrize("preset", list(PRESET_RULES))
def test_presets_load_natively_with_their_bos_rule(preset: str) -> None:
    loaded = load_model({"model": f"preset:{preset}", "device": "cpu"})
    d = loaded.describe()
    assert d["backend"] == "NativeLlama" and d["deterministic"] is True
    tokens = d["special_tokens"]
    assert (tokens["score_add_bos"], tokens["generate_add_bos"]) == PRESET_RULES[preset]
    assert tokens["eos_token_ids"] == [d["eos_token_id"]]
    if preset == "tiny-qwen2":
        assert d["vocab_size"] % 64 == 0 and d["vocab_size"] > loaded.tokenizer.get_vocab_size()
    from evalpipe_engine.scoring import score

    result = score(loaded, {"rows": [{"index": 0, "text": "def f(x):\n    return x\n"}]}, lambda *a: None)
    assert result["add_bos"] is PRESET_RULES[preset][0]


def _completions(loaded: Any, rows: int) -> dict[tuple[str, int], Any]:
    out: list[dict[str, Any]] = []
    prompts = ["def add(a, b):\n", "class Stack:\n    def", "import os\n", "x = [", "for i in range(3):\n"]
    params = {
        "requests": [{"key": f"p{i}", "prompt": p} for i, p in enumerate(prompts)],
        "n": 2,
        "temperature": 0.8,
        "max_new_tokens": 12,
        "seed": 3,
        "max_batch_rows": rows,
    }
    generate(loaded, params, lambda event, data: out.append(data) if event == "partial" else None)
    return {(o["key"], o["sample_index"]): o["completion"] for o in out}


@pytest.mark.parametrize("preset", ["tiny-qwen2", "tiny-mistral"])
def test_deterministic_batches_generate_what_one_at_a_time_does(preset: str) -> None:
    loaded = load_model({"model": f"preset:{preset}", "device": "cpu", "deterministic": True})
    alone = _completions(loaded, 1)
    assert len(alone) == 10
    assert _completions(loaded, 10) == alone
    seqs = _seqs(loaded.facts.vocab_size, (20, 3, 33), seed=1)
    one = [loaded.backend.target_logprobs([s])[0] for s in seqs]
    packed = loaded.backend.target_logprobs(seqs)
    assert all(torch.equal(a, b) for a, b in zip(one, packed, strict=True))


def test_a_saved_hf_checkpoint_loads_natively(tmp_path: Path) -> None:
    """A directory written by transformers' own save_pretrained (config.json in its format) loads on the native
    engine and scores as HF transformers does on the same directory."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from evalpipe_engine.presets import write_preset_dir

    preset = write_preset_dir(tmp_path / "preset", 0, "tiny-qwen2")
    vocab = json.loads((preset / "config.json").read_text())["vocab_size"]
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(tmp_path / "qwen")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(preset / f, tmp_path / "qwen" / f)
    text = [{"index": 0, "text": "def add(a, b):\n    return a + b\n"}]
    from evalpipe_engine.scoring import score

    figures = {}
    for backend in ("native", "hf"):
        loaded = load_model({"model": str(tmp_path / "qwen"), "device": "cpu", "backend": backend})
        figures[backend] = score(loaded, {"rows": text}, lambda *a: None)["rows"][0]["nll_sum"]
    assert figures["native"] == pytest.approx(figures["hf"], rel=1e-5)


# ------------------------------------------------------------------------------------------------ kernels

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
CUDA = torch.cuda.is_available()


@pytest.mark.skipif(not (INTERPRET or CUDA), reason="the Triton kernel runs in the interpreter or on a GPU")
def test_add_rmsnorm_kernel_is_hf_rmsnorm() -> None:
    from evalpipe_engine.kernels.add_rmsnorm import add_rmsnorm_, rmsnorm
    from evalpipe_engine.layers.norm import rms_norm_reference

    dev = "cuda" if CUDA else "cpu"
    g = torch.Generator().manual_seed(0)
    dtypes = (torch.float32, torch.bfloat16) if CUDA else (torch.float32,)
    for dtype in dtypes:
        x = torch.randn(37, 200, generator=g).to(dev, dtype)
        y = torch.randn(37, 200, generator=g).to(dev, dtype)
        w = (1 + 0.1 * torch.randn(200, generator=g)).to(dev, dtype)
        x_k, x_r = x.clone(), x.clone()
        h = add_rmsnorm_(x_k, y, w, 1e-6)
        x_r += y
        ref = rms_norm_reference(x_r, w, 1e-6)
        assert torch.equal(x_k, x_r)
        tol = 1e-6 if dtype == torch.float32 else 1e-2
        assert torch.allclose(h.float(), ref.float(), atol=tol, rtol=tol)
        assert torch.allclose(rmsnorm(x_r, w, 1e-6).float(), ref.float(), atol=tol, rtol=tol)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("family", FAMILIES)
def test_gpu_bf16_matches_hf_and_graphs_match_eager(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny(family, hidden_size=256, intermediate_size=512, num_attention_heads=8, num_key_value_heads=2,
               vocab_size=1000, max_position_embeddings=512)  # fmt: skip
    sd = random_state_dict(cfg, "cuda", torch.float32, seed=3)
    seq = _seqs(cfg.vocab_size, (300,), seed=1)[0]
    hf32 = hf_reference_model(cfg, sd, device="cuda", dtype=torch.float32, attn_implementation="eager")
    ref32 = hf32(seq[None].cuda()).logits[0].float()
    hf16 = hf_reference_model(cfg, sd, device="cuda", dtype=torch.bfloat16, attn_implementation="sdpa")
    ref16 = hf16(seq[None].cuda()).logits[0].float()
    for attn in ("sdpa", "flash"):
        model = NativeLlama.from_state_dict(cfg, sd, device="cuda", quant="bf16", attn=attn)
        ours = model.logits(seq)
        print(f"[{family} {attn}] ours-vs-hf32 {rel(ours, ref32):.2e}, hf-bf16-vs-hf32 {rel(ref16, ref32):.2e}")
        assert rel(ours, ref32) <= 1.5 * rel(ref16, ref32) + 1e-3
    prompt = seq[:40]
    outs = {}
    for graphs in ("1", "0"):
        monkeypatch.setenv("EVALPIPE_CUDA_GRAPHS", graphs)
        dec = model.open_decoder(prompt, 3, capacity=80)
        logits, steps = dec.first_logits, []
        for i in range(6):
            logits = dec.step(torch.tensor([i, i + 1, i + 2], device="cuda"))
            steps.append(logits)
        outs[graphs] = steps
        if graphs == "1":
            assert dec.graphed and dec.captures == 1
    for a, b in zip(outs["1"], outs["0"], strict=True):
        assert torch.equal(a, b)
    for quant in ("int8", "nf4", "fp8"):
        q = NativeLlama.from_state_dict(cfg, sd, device="cuda", quant=quant, attn="flash")
        lp = q.target_logprobs([seq])[0]
        assert torch.isfinite(lp).all()
        dec = q.open_decoder(prompt, 2)
        assert torch.isfinite(dec.step(torch.tensor([1, 2], device="cuda"))).all()


def test_the_engine_process_serves_a_qwen2_preset(engine: Any) -> None:
    """Through the protocol (every line checked against schemas/engine): load names the native backend and the
    special tokens, score and generate run."""
    result, _ = engine.ok("load", {"model": "preset:tiny-qwen2"})
    assert result["backend"] == "NativeLlama" and result["architecture"] == "Qwen2ForCausalLM"
    assert result["special_tokens"]["score_add_bos"] is False
    scored, _ = engine.ok("score", {"rows": [{"index": 0, "text": "def f(x):\n    return x\n"}]})
    assert scored["add_bos"] is False and scored["rows"][0]["nll_sum"] > 0
    generated, events = engine.ok("generate", {"requests": [{"key": "k", "prompt": "def f("}], "max_new_tokens": 4})
    assert generated["count"] == 1 and len(events) == 1


def test_decoding_imports_no_model() -> None:
    """The import cycle is gone: decoding.py reaches the model only through the object it is given."""
    import ast

    import evalpipe_engine.decoding as decoding

    tree = ast.parse(Path(decoding.__file__).read_text())
    runtime = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert not [n.module for n in runtime if n.module and n.module.split(".")[0] in ("model", "models")]
