"""Disk size of a 50%-sparse model saved by lathe-llmcompressor's `save_compressed`, as a
ratio of the same model saved dense (the seed promises about 40% less).

    python bench/llmcompressor_size.py [--hidden 512] [--layers 4]

Every linear projection of a llama-shaped model is pruned (unstructured, then 2:4) and the
folder is rewritten with compressed-tensors' compressors; embeddings and LM head stay dense,
so the whole-folder ratio depends on how much of the model the projections are.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from lathe_llmcompressor.compress import compress_folder

PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def prune(weight: torch.Tensor, structure: str) -> None:
    if structure == "2:4":
        groups = weight.view(-1, 4)
        groups.scatter_(1, groups.abs().argsort(dim=1)[:, :2], 0.0)
    else:
        weight[weight.abs() <= weight.abs().float().flatten().kthvalue(weight.numel() // 2).values] = 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    config = LlamaConfig(vocab_size=8192, hidden_size=args.hidden, intermediate_size=args.hidden * 11 // 4,
                         num_hidden_layers=args.layers, num_attention_heads=8, num_key_value_heads=8)
    print(f"{'dtype':<9} {'structure':<13} {'format':<18} {'projections':>12} {'whole folder':>13}")
    for dtype in (torch.bfloat16, torch.float32):
        for structure in ("unstructured", "2:4"):
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
            names = []
            with torch.no_grad():
                for name, module in model.named_modules():
                    if name.endswith(PROJ):
                        prune(module.weight.data, structure)
                        names.append(name)
            folder = Path(tempfile.mkdtemp())
            try:
                model.save_pretrained(folder, safe_serialization=True)
                r = compress_folder(folder, names)
                print(f"{str(dtype).split('.')[-1]:<9} {structure:<13} {r.format:<18} "
                      f"{r.target_compressed_bytes / r.target_dense_bytes:>12.3f} {r.compressed_bytes / r.dense_bytes:>13.3f}")
            finally:
                shutil.rmtree(folder)


if __name__ == "__main__":
    main()
