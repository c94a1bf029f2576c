"""int8 / nf4 / fp8 for any causal LM through the HF transformers backend (hf_quant.py): every linear but the head
becomes our quantized module, and the model computes exactly the function of its dequantized twin (CPU: the
quantized modules run their fp32 reference path); nn.Linear models (Llama) and Conv1D models (GPT-2) alike; the
engine's `load` of a Llama directory in each mode scores rows (including the W8A8 prefill path of int8/fp8)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from evalpipe_engine.hf_quant import quantize_hf_linears
from evalpipe_engine.loading import load_model
from evalpipe_engine.quant.common import QuantLinearBase

MODES = ["int8", "nf4", "fp8"]


def _llama(vocab: int = 211) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval()


def _gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=211, n_embd=64, n_layer=2, n_head=4, n_positions=128)
    torch.manual_seed(1)
    return GPT2LMHeadModel(cfg).eval()


def _dequantized_twin(original: nn.Module, quantized: nn.Module) -> nn.Module:
    """The dense model holding, in each replaced layer, exactly the weight the quantized layer multiplies by."""
    twin = copy.deepcopy(original)
    dense = dict(twin.named_modules())
    for name, module in quantized.named_modules():
        if isinstance(module, QuantLinearBase):
            target = dense[name]
            w = module.dequantized_weight()
            with torch.no_grad():
                target.weight.copy_(w.t() if type(target).__name__ == "Conv1D" else w)
    return twin


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("build", [_llama, _gpt2])
def test_quantized_model_is_its_dequantized_twin(mode: str, build: object) -> None:
    original = build()  # type: ignore[operator]
    model = copy.deepcopy(original)
    count = quantize_hf_linears(model, mode, torch.float32)
    linears = [m for m in original.modules() if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"]
    assert count == len(linears) - 1  # all but the head
    assert isinstance(model.get_output_embeddings(), nn.Linear)  # the head stays dense
    assert sum(isinstance(m, QuantLinearBase) and m.mode == mode for m in model.modules()) == count
    twin = _dequantized_twin(original, model)
    # 2 x 16 = 32 rows: the weight-only path (more rows take int8/fp8's per-token activation quantization, W8A8,
    # which their own tests pin); nf4 is weight-only at any size
    ids = torch.randint(0, 211, (2, 16), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        got = model(input_ids=ids).logits
        want = twin(input_ids=ids).logits
        dense = original(input_ids=ids).logits
    rel = float((got - want).norm() / want.norm())
    assert rel < 1e-5, rel
    assert float((got - dense).norm() / dense.norm()) > 1e-6  # quantization did change the weights


def test_engine_loads_a_llama_in_every_mode(preset_dir: Path, tmp_path: Path) -> None:
    vocab = json.loads((preset_dir / "config.json").read_text())["vocab_size"]
    _llama(vocab).save_pretrained(tmp_path / "llama")
    shutil.copy(preset_dir / "tokenizer.json", tmp_path / "llama" / "tokenizer.json")
    seqs = [torch.randint(0, vocab, (60,), generator=torch.Generator().manual_seed(3))]  # > 32 rows: W8A8
    loaded = {
        # backend hf: the HF-backend quantization under test (a Llama runs natively by default now)
        mode: load_model({"model": str(tmp_path / "llama"), "quant": mode, "device": "cpu", "backend": "hf"})
        for mode in ["fp32", *MODES]
    }
    reference = loaded["fp32"].backend.target_logprobs(seqs)[0]
    for mode in MODES:
        backend = loaded[mode].backend
        assert type(backend).__name__ == "HfBackend"
        assert backend.facts.weight_bytes < loaded["fp32"].backend.facts.weight_bytes
        assert backend.facts.n_params == loaded["fp32"].backend.facts.n_params
        lp = backend.target_logprobs(seqs)[0]
        assert torch.isfinite(lp).all()
        assert float((lp - reference).abs().mean()) < 0.05, mode  # close to fp32, not equal
