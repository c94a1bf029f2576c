"""--compute-dtype reaches the native model through the engine's load path."""

from __future__ import annotations

from pathlib import Path

import torch

from evalpipe_engine.loading import load_model
from evalpipe_engine.presets import write_preset_dir


def test_compute_dtype_sets_the_activation_dtype_of_quantized_modes(tmp_path: Path) -> None:
    model_dir = write_preset_dir(tmp_path / "tiny", seed=1)
    default = load_model({"model": str(model_dir), "quant": "nf4", "device": "cpu"})
    assert default.backend.act_dtype == torch.float32
    bf16 = load_model({"model": str(model_dir), "quant": "nf4", "device": "cpu", "compute_dtype": "bf16"})
    assert bf16.backend.act_dtype == torch.bfloat16
    assert bf16.compute_dtype == "bf16"
    # The quantized model still scores: finite log-probs for a short sequence.
    ids = torch.tensor([0, 5, 9, 17, 3], dtype=torch.long)
    (logprobs,) = bf16.backend.target_logprobs([ids])
    assert logprobs.shape == (4,)
    assert torch.isfinite(logprobs).all()
