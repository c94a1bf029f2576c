"""What every native model shares (nano-vllm style): one `forward(ids, ctx)` that both the prefill (packed
variable-length sequences) and the decode step (one token per cache row, captured in a CUDA graph by
decoding.StaticDecoder) run, `compute_logits` (the head), and the backend.CausalLMBackend members built on those
two. A family (models/starcoder2.py, models/llama.py) supplies its config, its layers and its forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import torch
from torch import nn

from ..attention import ATTN_BACKENDS
from ..backend import Decoder, ModelFacts
from ..errors import ModelError
from ..fast_paths import FastPaths
from ..layers.attention import Attention
from ..layers.context import Context, PrefillContext
from ..layers.head import LMHead, chunk_rows_for, target_logprobs_chunked
from ..quant.common import QuantLinearBase
from ..quant.linear import DenseLinear
from ..quant.modes import activation_dtype, check_mode
from ..transfers import tensor_to_device
from .weights import DictSource, SafetensorsSource, TensorSource, check_tensors


class NativeCausalLM(nn.Module):
    """A native model. Subclasses set `architecture` (their facts' name) and implement `build(source)` (the
    weights), `forward(ids, ctx)` (final-normed hidden states [N, hidden]) and may extend `set_deterministic`."""

    can_be_deterministic = True
    batches_prompts = True
    admits_rows = True  # its batch decoder takes new samples into a running batch (decoding.StaticDecoder.admit)
    architecture = "?"
    config_class: Any = None  # the family's config type (a `from_file(path)` classmethod): set by each family

    def __init__(
        self,
        cfg: Any,
        source: TensorSource,
        *,
        quant: str = "bf16",
        attn: str = "flash",
        compute_dtype: str | None = None,
    ) -> None:
        super().__init__()
        check_mode(quant)
        if attn not in ATTN_BACKENDS:
            raise ModelError(f"unknown attention backend {attn!r}", hint=f"use one of {', '.join(ATTN_BACKENDS)}")
        check_tensors(cfg, source)
        self.cfg = cfg
        self.quant = quant
        self.attn = attn
        self.device = source.device
        self.act_dtype = activation_dtype(quant, compute_dtype, self.device)
        self.deterministic = False
        self.fast_paths = FastPaths()  # every switch from its environment variable until set_fast_paths
        self.chunk_rows = chunk_rows_for(cfg.vocab_size)
        self.build(source)
        weight_bytes = sum(p.numel() * p.element_size() for p in self.parameters())
        weight_bytes += sum(b.numel() * b.element_size() for b in self.buffers())
        self.facts = ModelFacts(
            architecture=cfg.architecture,
            vocab_size=cfg.vocab_size,
            max_position_embeddings=cfg.max_position_embeddings,
            sliding_window=cfg.sliding_window,
            bos_token_id=cfg.bos_token_id,
            eos_token_id=cfg.eos_token_id,
            n_params=cfg.n_params(),
            weight_bytes=weight_bytes,
            dtype=str(self.act_dtype).removeprefix("torch."),
            device=str(self.device),
        )

    # ------------------------------------------------------------------------------------------ constructors

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu", **kw: Any) -> Self:
        d = Path(directory)
        cfg = cls.config_class.from_file(d / "config.json")
        with torch.inference_mode():
            return cls(cfg, SafetensorsSource(d, torch.device(device)), **kw)

    @classmethod
    def from_state_dict(
        cls, cfg: Any, tensors: Mapping[str, torch.Tensor], *, device: str | torch.device, **kw: Any
    ) -> Self:
        with torch.inference_mode():
            return cls(cfg, DictSource(tensors, torch.device(device)), **kw)

    @classmethod
    def random(cls, cfg: Any, *, device: str | torch.device, seed: int = 0, quant: str = "bf16", **kw: Any) -> Self:
        """Random weights built directly on `device`, in the activation dtype (devtools.random_weights)."""
        from ..devtools.random_weights import random_state_dict

        dev = torch.device(device)
        dtype = activation_dtype(quant, kw.get("compute_dtype"), dev)
        with torch.inference_mode():
            state = random_state_dict(cfg, dev, dtype, seed)
            model = cls(cfg, DictSource(state, dev), quant=quant, **kw)
            del state
        return model

    # ------------------------------------------------------------------------------------------ to implement

    def build(self, source: TensorSource) -> None:
        raise NotImplementedError

    def forward(self, ids: torch.Tensor, ctx: Context) -> torch.Tensor:  # type: ignore[override]
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ shared parts

    def _dense(self, source: TensorSource, name: str) -> nn.Parameter:
        return nn.Parameter(source.get(name).to(self.act_dtype), requires_grad=False)

    def _build_head(self, source: TensorSource) -> None:
        """self.embed and the LM head (the embedding itself when tied)."""
        self.embed = self._dense(source, "model.embed_tokens.weight")
        if self.cfg.tie_word_embeddings:
            self.lm_head: nn.Parameter = self.embed
        else:
            self.lm_head = self._dense(source, "lm_head.weight")
        self.head = LMHead(self.lm_head)

    def _attention_layers(self) -> list[Attention]:
        """One attention layer per transformer layer, on the model's rope tables and attention backend."""
        c = self.cfg
        heads = (c.num_attention_heads, c.num_key_value_heads, c.head_dim)
        return [Attention(i, *heads, c.sliding_window, self.rope, self.attn) for i in range(c.num_hidden_layers)]

    def compute_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits [M, vocab] in the activation dtype of final-normed hidden states [M, hidden]."""
        return self.head(h)

    def _head(self, h: torch.Tensor) -> torch.Tensor:  # the name earlier code used
        return self.compute_logits(h)

    def set_deterministic(self, on: bool) -> None:
        """The deterministic mode (invariant.py): every linear and the head on batch-invariant products, no fusion
        that exists only for some numbers of rows. Off is the fast path."""
        self.deterministic = on
        self.head.deterministic = on
        for module in self.modules():
            if isinstance(module, DenseLinear | QuantLinearBase):
                module.invariant = on
            elif hasattr(module, "deterministic") and module is not self:
                module.deterministic = on

    def set_fast_paths(self, fast_paths: FastPaths) -> None:
        """The fast-path switches (fast_paths.py): the decoders read cuda_graphs and decode_kernel, the fp8 prefill
        fp8_fused, and every linear and the head their cuda_rtc (the one-row CUDA GEMV)."""
        self.fast_paths = fast_paths
        self.head.cuda_rtc = fast_paths.cuda_rtc
        for module in self.modules():
            if isinstance(module, DenseLinear | QuantLinearBase):
                module.cuda_rtc = fast_paths.cuda_rtc

    # -------------------------------------------------------------------------------------------- packing

    def pack(self, sequences: list[torch.Tensor], *, kv_out: list[Any] | None = None) -> PrefillContext:
        """Sequences of token ids -> their packed prefill context (ids concatenated, positions, boundaries)."""
        if not sequences:
            raise ModelError("no sequences to run")
        lens: list[int] = []
        for i, s in enumerate(sequences):
            if s.dim() != 1 or s.dtype not in (torch.int64, torch.int32):
                raise ModelError(f"sequence {i} must be a 1-D integer tensor, got {s.dtype} {tuple(s.shape)}")
            if s.numel() == 0:
                raise ModelError(f"sequence {i} is empty")
            if s.numel() > self.cfg.max_position_embeddings:
                raise ModelError(
                    f"sequence {i} has {s.numel()} tokens, more than the model's maximum of "
                    f"{self.cfg.max_position_embeddings}",
                    hint="score long texts in windows (score's max_length/stride) or cut the context",
                )
            lens.append(int(s.numel()))
        joined = torch.cat([s.to(torch.int64) for s in sequences])
        # checked where the ids are (the host, as a rule) before the copy, and copied through pinned memory: a check
        # on the device, or a copy from pageable memory, would wait for the work queued before this prefill (a
        # continuous batch's overlapped step)
        lo, hi = int(joined.min()), int(joined.max())
        ids = tensor_to_device(joined, self.device)
        if lo < 0 or hi >= self.cfg.vocab_size:
            raise ModelError(f"token id {lo if lo < 0 else hi} is outside the vocabulary [0, {self.cfg.vocab_size})")
        bounds = [0]
        for n in lens:
            bounds.append(bounds[-1] + n)
        positions = tensor_to_device(torch.cat([torch.arange(n, dtype=torch.int32) for n in lens]), self.device)
        cu = tensor_to_device(torch.tensor(bounds, dtype=torch.int32), self.device)
        return PrefillContext(ids, positions, cu, bounds, max(lens), kv_out)

    def _pack(self, sequences: list[torch.Tensor]) -> PrefillContext:
        return self.pack(sequences)

    def hidden_states(self, packed: PrefillContext, kv_out: list[Any] | None = None) -> torch.Tensor:
        """Final-normed hidden states [N, hidden] of the packed tokens (with `kv_out`, each layer's rotated keys and
        values are appended to it)."""
        if kv_out is not None:
            packed.kv_out = kv_out
        try:
            return self.forward(packed.ids, packed)
        finally:
            packed.kv_out = None

    # ------------------------------------------------------------------------------------- CausalLMBackend

    @torch.inference_mode()
    def target_logprobs(self, sequences: list[torch.Tensor], *, run_last: bool = True) -> list[torch.Tensor]:
        if run_last:
            packed = self.pack(sequences)
            b = packed.bounds
            rows = torch.cat([torch.arange(b[s], b[s + 1] - 1) for s in range(len(b) - 1)]).to(self.device)
            targets = packed.ids[rows + 1]
            sizes = [b[s + 1] - b[s] - 1 for s in range(len(b) - 1)]
        else:  # the last id of each sequence is a target only: run s[:-1], score s[1:] from all its positions
            if any(s.dim() != 1 or s.numel() < 2 for s in sequences):
                raise ModelError("target_logprobs with run_last=False needs 1-D sequences of at least two ids")
            packed = self.pack([s[:-1] for s in sequences])
            rows = torch.arange(packed.bounds[-1], device=self.device)
            targets = tensor_to_device(torch.cat([s[1:].to(torch.int64) for s in sequences]), self.device)
            sizes = [int(s.numel()) - 1 for s in sequences]
        hidden = self.forward(packed.ids, packed)
        lp = target_logprobs_chunked(
            hidden[rows], targets, self.compute_logits, chunk_rows=self.chunk_rows, fixed_rows=self.deterministic
        )
        del hidden
        return [t.cpu() for t in torch.split(lp, sizes)]

    @torch.inference_mode()
    def next_token_logits(self, sequences: list[torch.Tensor]) -> torch.Tensor:
        packed = self.pack(sequences)
        hidden = self.forward(packed.ids, packed)
        last = torch.tensor([e - 1 for e in packed.bounds[1:]], device=self.device)
        return self.compute_logits(hidden[last]).float()

    def open_decoder(self, prompt: torch.Tensor, n: int, capacity: int | None = None) -> Decoder:
        """Incremental decoding of n samples sharing one prompt (the generation op's interface, as HfBackend):
        a decoding.StaticDecoder, its cache allocated once for `capacity` positions (prompt included; default
        prompt + 256, capped at the model's maximum), one CUDA graph replay per step on CUDA."""
        from ..decoding import StaticDecoder

        return StaticDecoder(self, prompt, n, capacity)

    def decode_rows_for(self, capacity: int, cap: int) -> int:
        """The most decode rows (at most `cap`) whose KV cache of `capacity` positions, and the sampler's
        per-row work over the vocabulary, fit in 90% of the device's memory beside what is allocated now (a
        function of the card and the model, not of the moment: the allocator's cached blocks are not counted).
        On CPU: `cap`."""
        if self.device.type != "cuda":
            return cap
        c = self.cfg
        element = torch.empty((), dtype=self.act_dtype).element_size()
        kv_row = capacity * c.num_hidden_layers * 2 * c.num_key_value_heads * c.head_dim * element
        sampler_row = c.vocab_size * 48  # float32 logits (two copies), float64 softmax, sort, cumsum, int64 order
        total = torch.cuda.get_device_properties(self.device).total_memory
        free = int(total * 0.9) - torch.cuda.memory_allocated(self.device)
        return max(1, min(cap, free // (kv_row + sampler_row)))

    def open_batch_decoder(
        self, prompts: list[torch.Tensor], counts: list[int], capacity: int | None = None, *, slots: int | None = None
    ) -> Decoder:
        """Decoding of counts[i] samples of prompts[i] for every i in one batch (rows in that order), the prompts
        prefilled together through the packed path; `capacity` as for open_decoder (longest prompt + budget).
        `slots` (continuous batching, `admits_rows`): rows allocated for samples that `admit` adds later."""
        from ..decoding import StaticDecoder

        return StaticDecoder(self, prompts, counts, capacity, slots=slots)

    @torch.inference_mode()
    def logits(self, sequence: torch.Tensor) -> torch.Tensor:
        """Full float32 logits [L, vocab] of one sequence. For parity tests only: this is the waste the scoring
        path avoids."""
        packed = self.pack([sequence])
        return self.compute_logits(self.forward(packed.ids, packed)).float()

    def score_minibatch(self, ids: torch.Tensor) -> torch.Tensor:
        """Benchmark unit: ids [B, T] on the device -> float32 [B*(T-1)] target log-probs, all on device (no
        host copies), exactly the work `target_logprobs` does for B rows of T tokens."""
        bsz, t = ids.shape
        with torch.inference_mode():
            packed = PrefillContext(
                ids=ids.reshape(-1),
                positions=torch.arange(t, device=self.device, dtype=torch.int32).repeat(bsz),
                cu_seqlens=torch.arange(0, (bsz + 1) * t, t, device=self.device, dtype=torch.int32),
                bounds=list(range(0, (bsz + 1) * t, t)),
                max_seqlen=t,
            )
            hidden = self.forward(packed.ids, packed).view(bsz, t, -1)
            targets = ids[:, 1:].reshape(-1)
            return target_logprobs_chunked(
                hidden[:, :-1].reshape(-1, hidden.shape[-1]), targets, self.compute_logits, chunk_rows=self.chunk_rows
            )
