"""Where a native model's weights come from: a checkpoint directory (single or sharded safetensors), or a dict of
tensors (tests, random weights); `check_tensors` checks every tensor a config needs before anything is built."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError


class TensorSource:
    """Where weights come from: `get(name)` returns the tensor on `device`; shapes are checked before loading."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def names(self) -> set[str]:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, ...]:
        raise NotImplementedError

    def get(self, name: str) -> torch.Tensor:
        raise NotImplementedError


class DictSource(TensorSource):
    def __init__(self, tensors: Mapping[str, torch.Tensor], device: torch.device) -> None:
        super().__init__(device)
        self.tensors = tensors

    def names(self) -> set[str]:
        return set(self.tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.tensors[name].shape)

    def get(self, name: str) -> torch.Tensor:
        return self.tensors[name].to(self.device)


class SafetensorsSource(TensorSource):
    """A checkpoint directory: model.safetensors, or shards listed in model.safetensors.index.json."""

    def __init__(self, directory: Path, device: torch.device) -> None:
        from safetensors import safe_open

        super().__init__(device)
        index = directory / "model.safetensors.index.json"
        if index.exists():
            weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
            files = sorted(set(weight_map.values()))
        else:
            single = directory / "model.safetensors"
            if not single.exists():
                raise ModelError(
                    f"no model.safetensors or model.safetensors.index.json in {directory}",
                    error_type="not_found",
                    hint="point at a directory holding an HF safetensors checkpoint",
                )
            files = [single.name]
            weight_map = {}
        self._handles: dict[str, Any] = {}
        self._where: dict[str, str] = {}
        for f in files:
            path = directory / f
            if not path.exists():
                raise ModelError(f"shard {f} named by the index is missing from {directory}", error_type="not_found")
            h = safe_open(str(path), framework="pt", device=str(device))
            self._handles[f] = h
            for k in h.keys():  # noqa: SIM118 (safe_open handles are not mappings)
                self._where[k] = f
        for k, f in weight_map.items():
            if self._where.get(k) != f:
                raise ModelError(f"tensor {k} is listed in the index under {f} but that shard does not hold it")

    def names(self) -> set[str]:
        return set(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handles[self._where[name]].get_slice(name).get_shape())

    def get(self, name: str) -> torch.Tensor:
        return self._handles[self._where[name]].get_tensor(name)


def check_tensors(cfg: Any, source: TensorSource) -> None:
    """Every needed tensor present with its shape, else one error naming the tensor and both shapes."""
    have = source.names()
    for name, shape in cfg.expected_shapes().items():
        if name not in have:
            hint = f"the checkpoint is incomplete or not a {cfg.architecture} checkpoint of this config"
            raise ModelError(f"missing tensor {name} (expected shape {list(shape)})", hint=hint)
        got = source.shape(name)
        if got != shape:
            raise ModelError(
                f"tensor {name} has shape {list(got)} but the config implies {list(shape)}",
                hint="config.json and the weights disagree: use the checkpoint's own config.json",
            )
