"""The fast-path switches as engine options (fast_paths.py): the load op takes them, a switch left out follows its
environment variable exactly as before, the load result (the manifest's `model`) reports every switch as resolved,
and the model's decoders and linears read the resolved switches."""

from __future__ import annotations

import pytest
import torch
from _native_helpers import tiny_config
from conftest import PRESET, EngineProcess

from evalpipe_engine.decoding import StaticDecoder
from evalpipe_engine.fast_paths import ENVIRONMENT, FUSED_ENV, GRAPHS_ENV, KERNEL_ENV, RTC_ENV, FastPaths
from evalpipe_engine.loading import load_model
from evalpipe_engine.model import NativeStarcoder2
from evalpipe_engine.quant.common import QuantLinearBase
from evalpipe_engine.quant.linear import DenseLinear

ALL_ON = {"cuda_graphs": True, "decode_kernel": True, "cuda_rtc": True, "fp8_fused": True}


@pytest.fixture(autouse=True)
def _no_switch_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)


def test_resolve_takes_options_then_the_environment() -> None:
    assert FastPaths.resolve(None, {}).to_json() == ALL_ON
    env = {GRAPHS_ENV: "0", KERNEL_ENV: " 0 ", RTC_ENV: "1", FUSED_ENV: "no"}  # only "0" turns a switch off
    assert FastPaths.resolve({}, env).to_json() == {**ALL_ON, "cuda_graphs": False, "decode_kernel": False}
    chosen = FastPaths.resolve({"cuda_graphs": True, "cuda_rtc": False, "fp8_fused": None}, env)
    assert chosen == FastPaths(cuda_graphs=True, decode_kernel=False, cuda_rtc=False, fp8_fused=True)


def test_an_unresolved_switch_follows_the_environment_when_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    unresolved = FastPaths()
    assert unresolved.use_cuda_graphs and unresolved.use_decode_kernel and unresolved.use_fp8_fused
    monkeypatch.setenv(GRAPHS_ENV, "0")
    monkeypatch.setenv(FUSED_ENV, "0")
    assert not unresolved.use_cuda_graphs and not unresolved.use_fp8_fused and unresolved.use_decode_kernel
    assert FastPaths(cuda_graphs=True).use_cuda_graphs


def test_load_reports_the_switches_defaulting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    params = {"model": PRESET, "device": "cpu", "quant": "int8"}
    assert load_model(params).describe()["fast_paths"] == ALL_ON
    monkeypatch.setenv(RTC_ENV, "0")
    monkeypatch.setenv(KERNEL_ENV, "0")
    loaded = load_model(params)
    assert loaded.describe()["fast_paths"] == {**ALL_ON, "cuda_rtc": False, "decode_kernel": False}
    explicit = load_model({**params, "fast_paths": {"cuda_rtc": True, "cuda_graphs": False}})
    assert explicit.describe()["fast_paths"] == {**ALL_ON, "decode_kernel": False, "cuda_graphs": False}
    # the resolved switches reach the model and each quantized linear, and no longer move with the environment
    model = explicit.backend
    assert isinstance(model, NativeStarcoder2) and model.fast_paths == explicit.fast_paths
    linears = [m for m in model.modules() if isinstance(m, QuantLinearBase)]
    assert linears and all(m.cuda_rtc is True for m in linears)
    monkeypatch.setenv(GRAPHS_ENV, "1")
    assert not model.fast_paths.use_cuda_graphs


def test_cuda_rtc_reaches_the_dense_linears_and_the_head() -> None:
    """bf16's one-row products (every dense linear and the head) take the same switch as the quantized GEMVs."""
    loaded = load_model({"model": PRESET, "device": "cpu", "quant": "bf16", "fast_paths": {"cuda_rtc": False}})
    model = loaded.backend
    assert isinstance(model, NativeStarcoder2)
    dense = [m for m in model.modules() if isinstance(m, DenseLinear)]
    assert dense and all(m.cuda_rtc is False for m in dense)
    assert model.head.cuda_rtc is False
    model.set_fast_paths(FastPaths(cuda_rtc=True))
    assert all(m.cuda_rtc is True for m in dense) and model.head.cuda_rtc is True


def test_the_hf_backend_takes_the_switches_too() -> None:
    loaded = load_model(
        {"model": PRESET, "device": "cpu", "quant": "int8", "backend": "hf", "fast_paths": {"cuda_rtc": False}}
    )
    assert loaded.describe()["fast_paths"] == {**ALL_ON, "cuda_rtc": False}
    linears = [m for m in loaded.backend.model.modules() if isinstance(m, QuantLinearBase)]  # type: ignore[attr-defined]
    assert linears and all(m.cuda_rtc is False for m in linears)


def test_a_decoder_reads_its_models_switches() -> None:
    model = NativeStarcoder2.random(tiny_config(), device="cpu", quant="fp32", attn="sdpa")
    model.set_fast_paths(FastPaths.resolve({"cuda_graphs": False, "decode_kernel": False}, {}))
    decoder = StaticDecoder(model, torch.arange(4), 1)
    assert not decoder.graphed  # CPU never captures; on CUDA the switch alone would keep it eager


def test_the_engine_reports_the_switches_in_its_load_result() -> None:
    engine = EngineProcess(extra_env={FUSED_ENV: "0"})
    try:
        result, _ = engine.ok("load", {"model": PRESET})
        assert result["fast_paths"] == {**ALL_ON, "fp8_fused": False}
        result, _ = engine.ok("load", {"model": PRESET, "fast_paths": {"fp8_fused": True, "cuda_graphs": False}})
        assert result["fast_paths"] == {**ALL_ON, "cuda_graphs": False}
        info, _ = engine.ok("info")
        assert info["model"]["fast_paths"] == result["fast_paths"]
        err = engine.error("load", {"model": PRESET, "fast_paths": {"graphs": False}})
        assert err["type"] == "bad_request" and err["message"] == "fast_paths has unknown field(s) graphs"
    finally:
        engine.close()
