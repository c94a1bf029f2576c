"""The HF transformers backend: any causal LM transformers can load, run through `AutoModelForCausalLM`.

It is the parity reference for the native StarCoder2 and the fallback for architectures we have not written.
Every precision: fp32/fp16/bf16 load in that dtype; int8/nf4/fp8 load in the compute dtype and then have their
linear layers replaced by our quantized ones (hf_quant.py). eager/sdpa attention; flash is the native engine's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .backend import Decoder, ModelFacts
from .errors import Unsupported
from .fast_paths import FastPaths
from .quant.modes import DENSE_DTYPES, activation_dtype

log = logging.getLogger(__name__)

# Rows of the head computed at once: keeps the float32 logits block near 256 MiB whatever the vocabulary size.
_HEAD_BLOCK_ELEMENTS = 1 << 26
# Config fields that change logits after the head; when any is set we use the model's own full forward.
_LOGIT_POSTPROCESSING = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


class HfDecoder:
    """Incremental decoding of n samples that share one prompt, with the HF KV cache (a `backend.Decoder`). The
    prompt is prefilled once and its cache repeated n times."""

    can_drop_rows = True

    def __init__(self, backend: HfBackend, prompt: torch.Tensor, n: int) -> None:
        from transformers import DynamicCache

        self._model = backend.model
        self._device = backend.device
        self._cache = DynamicCache(config=self._model.config)
        ids = prompt.to(self._device).view(1, -1)
        with torch.inference_mode():
            out = self._model(input_ids=ids, past_key_values=self._cache, use_cache=True, logits_to_keep=1)
        self._cache = out.past_key_values
        if n > 1:
            self._cache.batch_repeat_interleave(n)
        self.first_logits = out.logits[:, -1, :].float().expand(n, -1).contiguous()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per sample ([n] int64); return the next logits ([n, vocab] float32)."""
        ids = tokens.to(self._device).view(-1, 1)
        with torch.inference_mode():
            out = self._model(input_ids=ids, past_key_values=self._cache, use_cache=True, logits_to_keep=1)
        self._cache = out.past_key_values
        return out.logits[:, -1, :].float()

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows of the batch (finished samples leave)."""
        self._cache.batch_select_indices(torch.tensor(rows, dtype=torch.long, device=self._device))


class HfBackend:
    """`CausalLMBackend` over an HF `PreTrainedModel` (see backend.py for the contract)."""

    can_be_deterministic = False  # HF kernels choose their reduction order by batch shape
    batches_prompts = False  # one prompt's samples at a time (HfDecoder); prompts are not prefilled together
    admits_rows = False

    def set_deterministic(self, on: bool) -> None:
        if on:
            raise ValueError("HfBackend cannot be batch-invariant (loading.py refuses before this)")

    def set_fast_paths(self, fast_paths: FastPaths) -> None:
        """Of the switches only cuda_rtc applies here (the quantized linears' decode GEMV); HF has its own decoding
        (no CUDA graphs, no decode kernel of ours) and no fused fp8 prefill."""
        from .quant.common import QuantLinearBase

        self.fast_paths = fast_paths
        for module in self.model.modules():
            if isinstance(module, QuantLinearBase):
                module.cuda_rtc = fast_paths.cuda_rtc

    def __init__(self, model: Any, facts: ModelFacts, device: torch.device) -> None:
        self.model = model
        self.facts = facts
        self.device = device
        self.fast_paths = FastPaths()
        config = model.config
        self._base = getattr(model, getattr(model, "base_model_prefix", "model"), None)
        head = model.get_output_embeddings()
        plain_head = isinstance(head, nn.Linear) and not any(
            getattr(config, name, None) not in (None, 1, 1.0) for name in _LOGIT_POSTPROCESSING
        )
        self._head: nn.Linear | None = head if plain_head and self._base is not None else None

    # -- scoring -------------------------------------------------------------------------------------------------
    def _padded(self, sequences: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        longest = max(int(s.numel()) for s in sequences)
        ids = torch.zeros((len(sequences), longest), dtype=torch.long)
        mask = torch.zeros((len(sequences), longest), dtype=torch.long)
        for i, seq in enumerate(sequences):
            ids[i, : seq.numel()] = seq
            mask[i, : seq.numel()] = 1
        # Right padding: real tokens keep positions 0..L-1 and, under the causal mask, never see the pad.
        attention = None if bool(mask.all()) else mask.to(self.device)
        return ids.to(self.device), attention

    def target_logprobs(self, sequences: list[torch.Tensor], *, run_last: bool = True) -> list[torch.Tensor]:
        if not sequences:
            return []
        for seq in sequences:
            if seq.dim() != 1 or seq.numel() < (1 if run_last else 2):
                raise ValueError("target_logprobs needs non-empty 1-D id tensors (two ids with run_last=False)")
        if run_last:
            ids, attention = self._padded(sequences)
            lengths = [int(s.numel()) for s in sequences]
            flat = self._padded_logprobs(ids, attention, lengths)
            return list(torch.split(flat.float().cpu(), [n - 1 for n in lengths]))
        # The last id of each sequence is a target only: the model runs on s[:-1] and scores s[1:].
        inputs = [s[:-1] for s in sequences]
        ids, attention = self._padded(inputs)
        lengths = [int(s.numel()) for s in inputs]
        targets = [s[1:].to(self.device) for s in sequences]
        flat = self._padded_logprobs(ids, attention, lengths, targets)
        return list(torch.split(flat.float().cpu(), lengths))

    def _padded_logprobs(
        self,
        ids: torch.Tensor,
        attention: torch.Tensor | None,
        lengths: list[int],
        next_targets: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Target log-probs of right-padded rows (ids [B, T] on the device, row i real for lengths[i] tokens),
        concatenated row after row, on the device. Without `next_targets` row i scores ids[i, 1:n] from its first
        n - 1 positions; with them it scores next_targets[i] (n ids) from all n positions."""
        spans = [n if next_targets is not None else n - 1 for n in lengths]
        wanted = next_targets if next_targets is not None else [ids[i, 1:n] for i, n in enumerate(lengths)]
        with torch.inference_mode():
            if self._head is not None:
                hidden = self._base(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state
                rows = torch.cat([hidden[i, :m] for i, m in enumerate(spans)])
                return self._blocked_head_logprobs(rows, torch.cat(wanted))
            logits = self.model(input_ids=ids, attention_mask=attention, use_cache=False).logits
            parts = []
            for i, m in enumerate(spans):
                lp = torch.log_softmax(logits[i, :m].float(), dim=-1)
                parts.append(lp.gather(-1, wanted[i][:, None]).squeeze(-1))
            return torch.cat(parts)

    def score_minibatch(self, ids: torch.Tensor) -> torch.Tensor:
        """The latency unit: ids [B, T] on the device, every row T real tokens (no padding, no mask) -> float32
        [B*(T-1)] target log-probs on the device, the forward and head `target_logprobs` runs for B rows of T."""
        bsz, t = ids.shape
        return self._padded_logprobs(ids.to(self.device), None, [t] * bsz).float()

    def _blocked_head_logprobs(self, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        assert self._head is not None
        block = max(1, _HEAD_BLOCK_ELEMENTS // max(1, self.facts.vocab_size))
        out = torch.empty(rows.shape[0], dtype=torch.float32, device=rows.device)
        for start in range(0, rows.shape[0], block):
            logits = self._head(rows[start : start + block]).float()
            lse = torch.logsumexp(logits, dim=-1)
            picked = logits.gather(-1, targets[start : start + block, None]).squeeze(-1)
            out[start : start + block] = picked - lse
        return out

    # -- generation ----------------------------------------------------------------------------------------------
    def next_token_logits(self, sequences: list[torch.Tensor]) -> torch.Tensor:
        ids, attention = self._padded(sequences)
        lengths = torch.tensor([int(s.numel()) for s in sequences], device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=attention, use_cache=False).logits
            last = logits[torch.arange(len(sequences), device=self.device), lengths - 1]
        return last.float()

    def open_decoder(self, prompt: torch.Tensor, n: int, capacity: int | None = None) -> Decoder:
        """HF's DynamicCache grows as decoding goes, so `capacity` is not needed and is ignored."""
        return HfDecoder(self, prompt, n)

    def decode_rows_for(self, capacity: int, cap: int) -> int:
        """Not used: HF decodes one prompt's samples at a time (admits_rows is False)."""
        return cap

    def open_batch_decoder(
        self, prompts: list[torch.Tensor], counts: list[int], capacity: int | None = None, *, slots: int | None = None
    ) -> Decoder:
        raise Unsupported(
            "HfBackend decodes one prompt's samples at a time (batches_prompts is False)",
            hint="open one decoder per prompt with open_decoder",
        )


def build_hf_backend(
    model_dir: Path,
    config: dict[str, Any],
    quant: str,
    attn: str,
    device: torch.device,
    architecture: str,
    *,
    compute_dtype: str | None = None,
) -> HfBackend:
    """Load `model_dir` with transformers in the dense dtype of `quant` (quantized modes: the compute dtype, bf16 on
    CUDA and fp32 on CPU unless `compute_dtype` says otherwise, then every linear but the head quantized in place)
    and the requested attention."""
    if attn == "flash":
        raise Unsupported(
            f"attn flash is not available for {architecture} on the HF transformers backend",
            hint="use --attn sdpa or eager (the native StarCoder2 engine provides flash attention)",
        )
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    dtype = activation_dtype(quant, compute_dtype, device)
    if quant == "fp8":
        from .quant.fp8 import check_fp8_device

        check_fp8_device(device)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=dtype, attn_implementation=attn, low_cpu_mem_usage=True
        )
    except ValueError as exc:
        text = str(exc)
        if "Unrecognized configuration class" in text or "does not support" in text:
            raise Unsupported(
                f"transformers cannot load {architecture} from {model_dir} as a causal LM: {text.splitlines()[0]}",
                hint="evalpipe scores and generates with causal (decoder-only) language models",
            ) from exc
        raise
    model.to(device)
    model.eval()
    params = {id(p): p for p in model.parameters()}
    n_params = sum(p.numel() for p in params.values())  # before quantization: the model's own count
    if quant not in DENSE_DTYPES:
        from .hf_quant import quantize_hf_linears

        replaced = quantize_hf_linears(model, quant, dtype)
        log.info("quantized %d linear layers of %s to %s (compute %s)", replaced, architecture, quant, dtype)
    from .quant.common import QuantLinearBase

    # parameters, plus what the quantized linears keep as buffers (payload, scales, bias); tied weights once
    stored = [*model.parameters()]
    stored += [b for m in model.modules() if isinstance(m, QuantLinearBase) for b in m.buffers()]
    tensors = {t.data_ptr(): t for t in stored if t.numel() > 0}
    weight_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    vocab = model.get_output_embeddings().weight.shape[0] if model.get_output_embeddings() is not None else 0
    eos = config.get("eos_token_id")
    facts = ModelFacts(
        architecture=architecture,
        vocab_size=int(vocab or config.get("vocab_size", 0)),
        max_position_embeddings=int(config.get("max_position_embeddings") or config.get("n_positions") or 0),
        sliding_window=config.get("sliding_window"),
        bos_token_id=config.get("bos_token_id"),
        eos_token_id=eos[0] if isinstance(eos, list) and eos else eos,
        n_params=n_params,
        weight_bytes=int(weight_bytes),
        dtype=str(dtype).removeprefix("torch."),
        device=str(device),
    )
    log.info("loaded %s with transformers (%s, attn %s) on %s", architecture, facts.dtype, attn, device)
    return HfBackend(model, facts, device)
