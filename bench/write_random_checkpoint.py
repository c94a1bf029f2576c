"""Write a full-size checkpoint with random weights as a local HF directory (sharded safetensors + index,
config.json, the offline preset tokenizer with the family's special tokens), for end-to-end runs and benchmarks
where no real weights can be downloaded. Random weights time exactly like real ones.

    python bench/write_random_checkpoint.py --size 3b --out /tmp/starcoder2-3b-random [--seed 0] [--shard-gib 2]
    python bench/write_random_checkpoint.py --config qwen2.5-coder-7b --out /tmp/qwen-7b-random

--size picks a StarCoder2 size (3b, 7b, 15b); --config any file of cuda/evalpipe_engine/configs/ by name
(starcoder2-3b, qwen2.5-coder-1.5b, qwen2.5-coder-7b, deepseek-coder-6.7b, codellama-7b): the published
config.json values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda"))

from evalpipe_engine.models import native_config
from evalpipe_engine.presets import (
    _LLAMA_FAMILY,
    build_tokenizer,
    llama_family_tokenizer_config,
    starcoder2_tokenizer_config,
    write_tokenizer_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "cuda" / "evalpipe_engine" / "configs"
# the tokenizer's special tokens and BOS rule per model_type (the tiny presets' choices, presets.py)
FAMILY_PRESET = {"llama": "tiny-llama", "qwen2": "tiny-qwen2", "mistral": "tiny-mistral"}


def main() -> int:
    names = sorted(p.stem for p in CONFIGS.glob("*.json"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--size", choices=("3b", "7b", "15b"), help="a StarCoder2 size")
    group.add_argument("--config", choices=names, help="a config of cuda/evalpipe_engine/configs by name")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-gib", type=float, default=2.0)
    args = parser.parse_args()

    name = args.config or f"starcoder2-{args.size or '3b'}"
    config = json.loads((CONFIGS / f"{name}.json").read_text())
    config["torch_dtype"] = "bfloat16"
    cfg = native_config(config, source=name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gen = torch.Generator(device=device).manual_seed(args.seed)
    std = float(config.get("initializer_range", 0.02))
    shard_bytes = int(args.shard_gib * 2**30)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for tensor_name, shape in sorted(cfg.expected_shapes().items()):
        if tensor_name.endswith(".bias"):
            tensor = torch.zeros(shape, device=device, dtype=torch.bfloat16).normal_(0, 0.02, generator=gen)
        elif "norm" in tensor_name:
            tensor = torch.ones(shape, device=device, dtype=torch.bfloat16)
        else:
            tensor = torch.empty(shape, device=device, dtype=torch.bfloat16).normal_(0, std, generator=gen)
        nbytes = tensor.numel() * tensor.element_size()
        if size + nbytes > shard_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][tensor_name] = tensor.cpu()
        size += nbytes
    weight_map: dict[str, str] = {}
    for index, shard in enumerate(shards):
        file = f"model-{index + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(out / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, file))
    total = sum(t.numel() * t.element_size() for shard in shards for t in shard.values())
    index_doc = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index_doc, indent=2) + "\n")
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    preset = FAMILY_PRESET.get(str(config.get("model_type")))
    max_length = int(config["max_position_embeddings"])
    if preset is None:  # StarCoder2
        build_tokenizer().save(str(out / "tokenizer.json"))
        write_tokenizer_config(out, starcoder2_tokenizer_config(max_length))
    else:
        build_tokenizer(_LLAMA_FAMILY[preset]["specials"]).save(str(out / "tokenizer.json"))
        write_tokenizer_config(out, llama_family_tokenizer_config(preset, max_length))
    print(f"wrote {out} ({name}): {len(shards)} shards, {total / 2**30:.2f} GiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
