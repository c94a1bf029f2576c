"""GPU parity of the native StarCoder2-3B (the full published config, random weights, bf16) with HF transformers
on the same weights, against both HF bf16 and HF float32.

Two random initialisations:
- `scaled`: the projections writing into the residual stream scaled by 1/sqrt(2L) (GPT-2 practice). A model that
  is not chaotic: here the issue's bar applies as written: logits rel err <= 1e-2 against HF bf16 and perplexity
  within 1e-3, including every row past the 4096-token window.
- `hf-default`: HF's own init (N(0, 0.018) everywhere). Through 30 layers this random model amplifies any bf16
  rounding difference (HF bf16 itself lands several % from HF float32), so the bar is: ours no farther from HF
  float32 than HF bf16 is (x1.25), and perplexity within 1e-3 of HF bf16.
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
        assert abs(ppl / ppl16 - 1) <= 1e-3
        if state["init"] == "scaled":
            assert e16 <= 1e-2
            if len(seq) > 4096:  # rows whose window is cut: the same behaviour past 4096
                tail = rel(ours[4096:], state["ref16"][i][4096:])
                print(f"[scaled] {attn} rows 4096+: vs HF bf16 {tail:.2e}")
                assert tail <= 1e-2
        else:
            assert e32 <= 1.25 * state["floor"][i] + 1e-3
    del model
    torch.cuda.empty_cache()


def test_window_matters_at_this_size(state) -> None:
    """Past 4096, switching the window off must move the result well beyond the parity error."""
    if state["init"] != "scaled":
        pytest.skip("checked on the scaled init")
    cfg, seqs = state["cfg"], state["seqs"]
    nowin = Starcoder2Config.from_dict({**cfg.to_hf_dict(), "sliding_window": None})
    model = NativeStarcoder2.from_state_dict(nowin, state["sd"], device="cuda", quant="bf16", attn="flash")
    ours = model.logits(seqs[0])
    assert rel(ours[:4096], state["ref16"][0][:4096]) <= 1e-2
    moved = rel(ours[4096:], state["ref16"][0][4096:])
    print(f"window off, rows 4096+: vs HF bf16 {moved:.2e}")
    assert moved > 3e-2
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
    assert err <= 1e-2
    del model
    torch.cuda.empty_cache()
