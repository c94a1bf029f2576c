"""GPU parity of the native StarCoder2-3B (the full published config, random weights) with HF transformers on the
same weights, against both HF bf16 and HF float32 (the truth both bf16 runs approximate).

Measured on an H100 (2026-11-26, docs/fast-path.md): a random 30-layer model amplifies every bf16 rounding
difference, so HF bf16 itself lands 2.3% (residual-scaled init) to 6.5% (HF's init) from HF float32 on a
6000-token row, and no bf16 implementation that is not bit-identical to HF can be within 1e-2 of HF bf16 there.
The bars, per row: ours bf16 no farther from HF float32 than HF bf16 is (ours measured 1.3%); ours bf16 within
HF's own bf16 noise of HF bf16 (<= 1.25 x |HF bf16 - HF fp32| + 1e-3); perplexity within 1e-3 of HF bf16 (measured
1e-4); rows past the 4096 window held to the same bars; ours float32 within 1e-4 of HF float32 (the math itself).

Two random initialisations: `scaled` (o_proj/c_proj std / sqrt(2L), GPT-2 practice: a less chaotic model) and
`hf-default` (HF's own N(0, 0.018) everywhere).
"""

from __future__ import annotations

import gc

import pytest
import torch

from evalpipe_engine.model import NativeStarcoder2, Starcoder2Config, hf_reference_model, random_state_dict

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _lp(logits: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits, -1)[:-1].gather(1, seq[1:, None].to(logits.device)).squeeze(1).cpu()


@pytest.fixture(scope="module", params=["scaled", "hf-default"])
def state(request: pytest.FixtureRequest):
    cfg = Starcoder2Config.preset("3b")
    g = torch.Generator().manual_seed(99)
    seqs = [torch.randint(0, cfg.vocab_size, (n,), generator=g) for n in (6000, 300)]
    sd = random_state_dict(cfg, "cuda", torch.bfloat16, seed=1234, residual_scaled=request.param == "scaled")
    st: dict = {"init": request.param, "cfg": cfg, "sd": sd, "seqs": seqs}
    hf32 = hf_reference_model(cfg, {k: v.float() for k, v in sd.items()}, device="cuda", dtype=torch.float32)
    with torch.inference_mode():
        st["ref32"] = [hf32(s[None].cuda()).logits[0].float() for s in seqs]
    del hf32
    gc.collect()
    hf = hf_reference_model(cfg, sd, device="cuda", dtype=torch.bfloat16, attn_implementation="sdpa")
    with torch.inference_mode():
        st["ref16"] = [hf(s[None].cuda()).logits[0].float() for s in seqs]
    st["hf"] = hf
    st["floor"] = [rel(a, b) for a, b in zip(st["ref16"], st["ref32"], strict=True)]
    print(f"\n[{request.param}] HF bf16 vs HF fp32 logits rel err: {st['floor']}")
    yield st
    st.clear()
    gc.collect()
    torch.cuda.empty_cache()


@pytest.mark.parametrize("attn", ["flash", "sdpa", "eager"])
def test_bf16_parity_with_hf(state, attn: str) -> None:
    if state["init"] == "hf-default" and attn != "flash":
        pytest.skip("the chaotic init is checked on the fast path only")
    cfg, seqs = state["cfg"], state["seqs"]
    model = NativeStarcoder2.from_state_dict(cfg, state["sd"], device="cuda", quant="bf16", attn=attn)
    lps = model.target_logprobs(seqs)
    for i, seq in enumerate(seqs):
        ours = model.logits(seq)
        e16, e32 = rel(ours, state["ref16"][i]), rel(ours, state["ref32"][i])
        ppl = float(torch.exp(-lps[i].double().mean()))
        ppl16 = float(torch.exp(-_lp(state["ref16"][i], seq).double().mean()))
        print(f"[{state['init']}] {attn} L={len(seq)}: vs HF bf16 {e16:.2e}, vs HF fp32 {e32:.2e} "
              f"(HF bf16 vs fp32 {state['floor'][i]:.2e}); ppl {ppl:.4f} vs HF bf16 {ppl16:.4f}")  # fmt: skip
        floor = state["floor"][i]
        assert abs(ppl / ppl16 - 1) <= 1e-3
        assert e32 <= floor  # at least as close to float32 as HF's own bf16
        assert e16 <= 1.25 * floor + 1e-3
        if len(seq) > 4096:  # rows whose window is cut: the same behaviour past 4096
            r16, r32 = state["ref16"][i][4096:], state["ref32"][i][4096:]
            t16, t32, tfloor = rel(ours[4096:], r16), rel(ours[4096:], r32), rel(r16, r32)
            print(f"[{state['init']}] {attn} rows 4096+: vs HF bf16 {t16:.2e}, vs fp32 {t32:.2e} (floor {tfloor:.2e})")
            assert t32 <= tfloor and t16 <= 1.25 * tfloor + 1e-3
    del model
    torch.cuda.empty_cache()


def test_float32_parity_with_hf(state) -> None:
    """The math itself: ours in float32 (flash with IEEE fp32 products) against HF float32."""
    if state["init"] != "scaled":
        pytest.skip("checked on the scaled init")
    cfg, seqs = state["cfg"], state["seqs"]
    sd32 = {k: v.float() for k, v in state["sd"].items()}
    model = NativeStarcoder2.from_state_dict(cfg, sd32, device="cuda", quant="fp32", attn="flash")
    for i, seq in enumerate(seqs):
        err = rel(model.logits(seq), state["ref32"][i])
        print(f"fp32 flash L={len(seq)} vs HF fp32 {err:.2e}")
        assert err <= 1e-4
    del model, sd32
    torch.cuda.empty_cache()


def test_window_matters_at_this_size(state) -> None:
    """Past 4096, switching the window off must move the result far beyond the parity error (so that agreement
    past 4096 above is the window being honoured, not it being irrelevant)."""
    if state["init"] != "scaled":
        pytest.skip("checked on the scaled init")
    cfg, seqs = state["cfg"], state["seqs"]
    nowin = Starcoder2Config.from_dict({**cfg.to_hf_dict(), "sliding_window": None})
    model = NativeStarcoder2.from_state_dict(nowin, state["sd"], device="cuda", quant="fp32", attn="flash")
    ref32 = state["ref32"][0]
    ours = model.logits(seqs[0])
    inside = rel(ours[:4096], ref32[:4096])
    moved = rel(ours[4096:], ref32[4096:])
    print(f"window off (fp32): rows <4096 vs HF fp32 {inside:.2e}, rows 4096+ {moved:.2e}")
    assert inside <= 1e-4
    assert moved > 100 * max(inside, 1e-5)
    del model
    torch.cuda.empty_cache()


def test_decoder_matches_hf(state) -> None:
    if state["init"] != "scaled":
        pytest.skip("checked on the scaled init")
    cfg, seqs, hf = state["cfg"], state["seqs"], state["hf"]
    model = NativeStarcoder2.from_state_dict(cfg, state["sd"], device="cuda", quant="bf16", attn="flash")
    prompt = seqs[1][:200]
    dec = model.open_decoder(prompt, 4)
    g = torch.Generator().manual_seed(5)
    grown = [prompt.clone() for _ in range(4)]
    for _ in range(24):
        tok = torch.randint(0, cfg.vocab_size, (4,), generator=g)
        grown = [torch.cat([s, tok[i : i + 1]]) for i, s in enumerate(grown)]
        logits = dec.step(tok)
    with torch.inference_mode():
        ref = torch.stack([hf(s[None].cuda()).logits[0, -1].float() for s in grown])
    err = rel(logits, ref)
    print(f"decoder vs HF bf16: {err:.2e}")
    assert err <= 3e-2  # HF's own bf16 noise on this model is 1.4-2.3% (see the module docstring)
    del model
    torch.cuda.empty_cache()
