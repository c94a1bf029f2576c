"""Both backends (the native StarCoder2 and HF transformers) implement the whole backend.CausalLMBackend protocol,
and their decoders the whole backend.Decoder, each member defined on the class itself; what a backend cannot do
it says through its capability attributes; and the ops call backends through the protocol, never by probing."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch
from _native_helpers import tiny_config

from evalpipe_engine import backend as contract
from evalpipe_engine.decoding import StaticDecoder
from evalpipe_engine.errors import Unsupported
from evalpipe_engine.generation import RecomputeDecoder
from evalpipe_engine.hf_backend import HfBackend, HfDecoder
from evalpipe_engine.loading import load_model
from evalpipe_engine.model import NativeStarcoder2

ENGINE_DIR = Path(contract.__file__).parent


def members(protocol: type) -> set[str]:
    """The protocol's declared attributes and methods."""
    methods = {name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")}
    return set(protocol.__annotations__) | methods


def defined_on(cls: type, name: str) -> bool:
    """Defined by the class or a base of ours (not inherited from Protocol, nn.Module or object), or set per
    instance in __init__ (a data attribute)."""
    owners = [base for base in cls.__mro__ if base.__module__.startswith("evalpipe_engine")]
    if any(name in vars(base) for base in owners):
        return True
    return any(f"self.{name} =" in inspect.getsource(base.__init__) for base in owners if "__init__" in vars(base))


def test_the_protocols_declare_every_member_the_engine_uses() -> None:
    assert members(contract.CausalLMBackend) == {
        "facts",
        "can_be_deterministic",
        "batches_prompts",
        "admits_rows",
        "set_deterministic",
        "set_fast_paths",
        "target_logprobs",
        "next_token_logits",
        "open_decoder",
        "open_batch_decoder",
        "decode_rows_for",
        "score_minibatch",
    }
    assert members(contract.Decoder) == {"first_logits", "can_drop_rows", "step", "keep"}


@pytest.mark.parametrize("cls", [NativeStarcoder2, HfBackend])
def test_each_backend_defines_every_member(cls: type) -> None:
    missing = sorted(name for name in members(contract.CausalLMBackend) if not defined_on(cls, name))
    assert missing == []


@pytest.mark.parametrize("cls", [StaticDecoder, HfDecoder, RecomputeDecoder])
def test_each_decoder_defines_every_member(cls: type) -> None:
    missing = sorted(name for name in members(contract.Decoder) if not defined_on(cls, name))
    assert missing == []


@pytest.fixture(scope="module", params=["native", "hf"])
def backend(request: pytest.FixtureRequest) -> contract.CausalLMBackend:
    loaded = load_model({"model": "preset:tiny-starcoder2", "seed": 0, "device": "cpu", "backend": request.param})
    return loaded.backend


def test_loaded_backends_and_their_decoders_satisfy_the_protocols(backend: contract.CausalLMBackend) -> None:
    assert isinstance(backend, contract.CausalLMBackend)
    prompt = torch.arange(1, 9)
    decoder = backend.open_decoder(prompt, 2, capacity=20)
    assert isinstance(decoder, contract.Decoder) and decoder.can_drop_rows
    assert decoder.first_logits.shape == (2, backend.facts.vocab_size)
    assert isinstance(RecomputeDecoder(backend, prompt, 2), contract.Decoder)


def test_capabilities_are_declared_not_absent(backend: contract.CausalLMBackend) -> None:
    prompts = [torch.arange(1, 6), torch.arange(2, 9)]
    if isinstance(backend, NativeStarcoder2):
        assert backend.batches_prompts and backend.can_be_deterministic
        decoder = backend.open_batch_decoder(prompts, [2, 1], capacity=16)
        assert decoder.first_logits.shape[0] == 3
    else:
        assert not backend.batches_prompts and not backend.can_be_deterministic
        with pytest.raises(Unsupported, match="one prompt"):
            backend.open_batch_decoder(prompts, [2, 1], capacity=16)


def test_score_minibatch_is_target_logprobs_of_the_rows(backend: contract.CausalLMBackend) -> None:
    ids = torch.randint(0, backend.facts.vocab_size, (3, 17), generator=torch.Generator().manual_seed(0))
    timed = backend.score_minibatch(ids)
    assert timed.dtype == torch.float32 and timed.shape == (3 * 16,)
    assert torch.equal(timed, torch.cat(backend.target_logprobs(list(ids))))


def test_native_backend_from_config_is_a_backend() -> None:
    model = NativeStarcoder2.random(tiny_config(), device="cpu", quant="fp32", attn="sdpa")
    assert isinstance(model, contract.CausalLMBackend)


@pytest.mark.parametrize("module", ["generation.py", "bench.py", "scoring.py", "server.py", "loading.py"])
def test_the_ops_never_probe_a_backend(module: str) -> None:
    source = (ENGINE_DIR / module).read_text(encoding="utf-8")
    assert not re.search(r"\bgetattr\(|\bhasattr\(|\binspect\b", source)
