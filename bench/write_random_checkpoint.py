"""Write a full-size StarCoder2 checkpoint with random weights as a local HF directory (sharded safetensors +
index, config.json, the offline preset tokenizer), for end-to-end runs and benchmarks where no real weights can be
downloaded. Random weights time exactly like real ones.

    python bench/write_random_checkpoint.py --size 3b --out /tmp/starcoder2-3b-random [--seed 0] [--shard-gib 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda"))

from evalpipe_engine.presets import _param_shapes, build_tokenizer

CONFIGS = Path(__file__).resolve().parents[1] / "cuda" / "evalpipe_engine" / "configs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=("3b", "7b", "15b"), default="3b")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-gib", type=float, default=2.0)
    args = parser.parse_args()

    config = json.loads((CONFIGS / f"starcoder2-{args.size}.json").read_text())
    config["torch_dtype"] = "bfloat16"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gen = torch.Generator(device=device).manual_seed(args.seed)
    std = float(config.get("initializer_range", 0.02))
    shard_bytes = int(args.shard_gib * 2**30)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, shape in sorted(_param_shapes(config).items()):
        if name.endswith(".bias"):
            tensor = torch.zeros(shape, device=device, dtype=torch.bfloat16).normal_(0, 0.02, generator=gen)
        elif "norm" in name:
            tensor = torch.ones(shape, device=device, dtype=torch.bfloat16)
        else:
            tensor = torch.empty(shape, device=device, dtype=torch.bfloat16).normal_(0, std, generator=gen)
        nbytes = tensor.numel() * tensor.element_size()
        if size + nbytes > shard_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][name] = tensor.cpu()
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
    build_tokenizer().save(str(out / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "add_bos_token": False,
        "model_max_length": config["max_position_embeddings"],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    print(f"wrote {out}: {len(shards)} shards, {total / 2**30:.2f} GiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
