"""Native StarCoder2 on CPU in float32 against HF transformers' Starcoder2ForCausalLM on the same random weights,
plus checkpoint loading (single file and sharded) and every bad-input error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _native_helpers import tiny_config
from safetensors.torch import save_file

from evalpipe_engine.errors import EngineError
from evalpipe_engine.model import (
    ModelError,
    NativeStarcoder2,
    Starcoder2Config,
    build_native_backend,
    hf_reference_model,
    random_state_dict,
)

TOL = 1e-5


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def pair(request: pytest.FixtureRequest) -> tuple[Starcoder2Config, dict[str, torch.Tensor], object]:
    cfg = tiny_config(tie_word_embeddings=request.param)
    sd = random_state_dict(cfg, "cpu", torch.float32, seed=7)
    hf = hf_reference_model(cfg, sd, device="cpu", dtype=torch.float32, attn_implementation="eager")
    return cfg, sd, hf


def _seqs(vocab: int, lengths: tuple[int, ...], seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (n,), generator=g) for n in lengths]


@pytest.mark.parametrize("attn", ["eager", "sdpa", "flash"])
def test_logits_match_hf_past_the_window(pair, attn: str) -> None:
    cfg, sd, hf = pair
    model = NativeStarcoder2.from_state_dict(cfg, sd, device="cpu", quant="fp32", attn=attn)
    assert cfg.sliding_window == 16
    for seq in _seqs(cfg.vocab_size, (57, 16, 17, 1), seed=1):
        ref = hf(seq[None]).logits[0].float()
        ours = model.logits(seq)
        assert ours.shape == ref.shape
        assert rel(ours, ref) <= TOL, (attn, len(seq))


def test_window_is_honoured_not_ignored(pair) -> None:
    """Positions past the window must differ from a model that attends to everything (else parity is vacuous)."""
    cfg, sd, _ = pair
    windowed = NativeStarcoder2.from_state_dict(cfg, sd, device="cpu", quant="fp32", attn="sdpa")
    full_cfg = tiny_config(tie_word_embeddings=cfg.tie_word_embeddings, sliding_window=None)
    full = NativeStarcoder2.from_state_dict(full_cfg, sd, device="cpu", quant="fp32", attn="sdpa")
    seq = _seqs(cfg.vocab_size, (40,), seed=2)[0]
    a, b = windowed.logits(seq), full.logits(seq)
    assert rel(a[:16], b[:16]) <= TOL  # inside the window: identical
    assert rel(a[16:], b[16:]) > 1e-3  # past it: the window changes the result


@pytest.mark.parametrize("attn", ["eager", "flash"])
def test_packed_target_logprobs_match_hf(pair, attn: str) -> None:
    cfg, sd, hf = pair
    model = NativeStarcoder2.from_state_dict(cfg, sd, device="cpu", quant="fp32", attn=attn)
    model.chunk_rows = 7  # force several head chunks
    seqs = _seqs(cfg.vocab_size, (33, 2, 50, 9), seed=3)
    got = model.target_logprobs(seqs)
    assert [g.shape[0] for g in got] == [32, 1, 49, 8]
    for seq, lp in zip(seqs, got, strict=True):
        assert lp.dtype == torch.float32
        ref = torch.log_softmax(hf(seq[None]).logits[0].float(), -1)[:-1].gather(1, seq[1:, None]).squeeze(1)
        assert torch.allclose(lp, ref, atol=1e-5, rtol=1e-5)
        ppl, ref_ppl = torch.exp(-lp.mean()), torch.exp(-ref.mean())
        assert abs(float(ppl / ref_ppl) - 1) < 1e-5


def test_next_token_logits_and_decoder_match_hf(pair) -> None:
    cfg, sd, hf = pair
    model = NativeStarcoder2.from_state_dict(cfg, sd, device="cpu", quant="fp32", attn="flash")
    seqs = _seqs(cfg.vocab_size, (12, 30), seed=4)
    nt = model.next_token_logits(seqs)
    ref = torch.stack([hf(s[None]).logits[0, -1] for s in seqs])
    assert nt.shape == (2, cfg.vocab_size) and nt.dtype == torch.float32
    assert rel(nt, ref) <= TOL

    prompt = seqs[0]
    dec = model.open_decoder(prompt, 3)
    assert rel(dec.first_logits[2], hf(prompt[None]).logits[0, -1]) <= TOL
    grown = [prompt.clone() for _ in range(3)]
    g = torch.Generator().manual_seed(5)
    for _ in range(40):  # past the window (16) and past the first cache growth (64 > 12*2)
        tok = torch.randint(0, cfg.vocab_size, (3,), generator=g)
        grown = [torch.cat([s, tok[i : i + 1]]) for i, s in enumerate(grown)]
        logits = dec.step(tok)
    ref = torch.stack([hf(s[None]).logits[0, -1] for s in grown])
    assert rel(logits, ref) <= TOL


def _write_checkpoint(directory: Path, cfg: Starcoder2Config, sd: dict[str, torch.Tensor], shards: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(cfg.to_hf_dict()))
    names = sorted(sd)
    if shards == 1:
        save_file({k: sd[k].contiguous() for k in names}, str(directory / "model.safetensors"))
        return
    weight_map: dict[str, str] = {}
    for i in range(shards):
        part = names[i::shards]
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: sd[k].contiguous() for k in part}, str(directory / fname))
        weight_map.update(dict.fromkeys(part, fname))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


@pytest.mark.parametrize("shards", [1, 3])
def test_loads_safetensors_checkpoints(tmp_path: Path, pair, shards: int) -> None:
    cfg, sd, hf = pair
    _write_checkpoint(tmp_path / "ckpt", cfg, sd, shards)
    model = NativeStarcoder2.from_pretrained(tmp_path / "ckpt", quant="fp32", attn="sdpa")
    seq = _seqs(cfg.vocab_size, (20,), seed=6)[0]
    assert rel(model.logits(seq), hf(seq[None]).logits[0]) <= TOL
    assert model.facts.architecture == "Starcoder2ForCausalLM"
    assert model.facts.n_params == sum(t.numel() for t in sd.values())
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    built = build_native_backend(tmp_path / "ckpt", config, "fp32", "flash", torch.device("cpu"), "x")
    assert rel(built.logits(seq), hf(seq[None]).logits[0]) <= TOL


def test_unsupported_architecture_is_named() -> None:
    with pytest.raises(ModelError, match="unsupported architecture LlamaForCausalLM") as e:
        Starcoder2Config.from_dict({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    assert e.value.error_type == "unsupported"
    assert isinstance(e.value, EngineError)


def test_missing_and_mismatched_tensors_are_named(tmp_path: Path) -> None:
    cfg = tiny_config()
    sd = random_state_dict(cfg, "cpu", torch.float32, seed=0)
    missing = {k: v for k, v in sd.items() if k != "model.layers.1.mlp.c_fc.bias"}
    msg = r"missing tensor model\.layers\.1\.mlp\.c_fc\.bias \(expected shape \[160\]\)"
    with pytest.raises(ModelError, match=msg):
        NativeStarcoder2.from_state_dict(cfg, missing, device="cpu", quant="fp32")
    bad = dict(sd)
    bad["model.layers.0.self_attn.k_proj.weight"] = torch.zeros(64, 64)
    _write_checkpoint(tmp_path / "bad", cfg, bad, 2)
    with pytest.raises(ModelError, match=r"k_proj\.weight has shape \[64, 64\] but the config implies \[32, 64\]"):
        NativeStarcoder2.from_pretrained(tmp_path / "bad", quant="fp32")
    with pytest.raises(ModelError, match=r"no model\.safetensors") as e:
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text(json.dumps(cfg.to_hf_dict()))
        NativeStarcoder2.from_pretrained(tmp_path / "empty")
    assert e.value.error_type == "not_found"


def test_bad_sequences_are_refused() -> None:
    cfg = tiny_config(max_position_embeddings=32)
    model = NativeStarcoder2.random(cfg, device="cpu", quant="fp32", attn="sdpa")
    with pytest.raises(ModelError, match="sequence 1 has 33 tokens, more than the model's maximum of 32"):
        model.target_logprobs([torch.zeros(5, dtype=torch.int64), torch.zeros(33, dtype=torch.int64)])
    with pytest.raises(ModelError, match="token id 211 is outside the vocabulary"):
        model.target_logprobs([torch.tensor([1, 211])])
    with pytest.raises(ModelError, match="sequence 0 is empty"):
        model.next_token_logits([torch.zeros(0, dtype=torch.int64)])
    with pytest.raises(ModelError, match="unknown attention backend 'xformers'"):
        NativeStarcoder2.random(cfg, device="cpu", quant="fp32", attn="xformers")


def test_presets_carry_the_published_hyperparameters() -> None:
    c3, c7, c15 = (Starcoder2Config.preset(n) for n in ("3b", "7b", "15b"))

    def dims(c: Starcoder2Config) -> tuple[int, ...]:
        return (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size)

    assert dims(c3) == (3072, 30, 24, 2, 12288)
    assert dims(c7) == (4608, 32, 36, 4, 18432)
    assert dims(c15) == (6144, 40, 48, 4, 24576)
    assert c3.tie_word_embeddings and not c15.tie_word_embeddings
    assert c3.rope_theta == 999999.4420358813 and c7.rope_theta == 1e6 and c15.rope_theta == 1e5
    assert all(c.sliding_window == 4096 and c.max_position_embeddings == 16384 for c in (c3, c7, c15))
    # 3B: ~3.03e9 parameters; FLOPs/token at 4096 about 6.8e9 (BASELINES.md)
    assert 2.9e9 < c3.n_params() < 3.1e9
    assert 6.5e9 < c3.flops_per_token(4096) < 7.1e9


def test_decoder_keep_drops_finished_samples(pair) -> None:
    cfg, sd, hf = pair
    model = NativeStarcoder2.from_state_dict(cfg, sd, device="cpu", quant="fp32", attn="flash")
    prompt = _seqs(cfg.vocab_size, (9,), seed=8)[0]
    dec = model.open_decoder(prompt, 3)
    a = torch.tensor([5, 6, 7])
    dec.step(a)
    dec.keep([0, 2])
    logits = dec.step(torch.tensor([1, 2]))
    ref = torch.stack([hf(torch.cat([prompt, torch.tensor([x, y])])[None]).logits[0, -1] for x, y in ((5, 1), (7, 2))])
    assert rel(logits, ref) <= TOL


def test_loading_selects_the_native_model_for_starcoder2() -> None:
    from evalpipe_engine.loading import select_backend

    builder = select_backend({"model_type": "starcoder2"}, "fp32", "flash", torch.device("cpu"))
    assert builder is build_native_backend
