"""Saved-for-backward bytes and step time of lathe's fused LoRA kernels against peft's LoRA modules.

    python bench/lora_kernels.py [--hidden 512] [--intermediate 1536] [--layers 2] [--tokens 2048] [--rank 16] [--runs 3]

One llama-shaped model (random weights, float32, CPU), LoRA on every linear layer (dropout 0),
two copies: peft as is, and peft with ``lora_mlp_kernel``, ``lora_qkv_kernel`` and ``lora_o_kernel``
applied. "saved" is the bytes of distinct storages autograd keeps for backward during one forward
(``torch.autograd.graph.saved_tensors_hooks``; parameters excluded); time is the median wall time
of ``--runs`` forward + backward steps. Ratios are kernels / peft, measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import time
from types import SimpleNamespace
from typing import Any


def saved_bytes(model: Any, ids: Any) -> int:
    import torch

    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.nn.Parameter):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids).loss.backward()
    return sum(storages.values())


def step_time(model: Any, ids: Any, runs: int) -> float:
    times = []
    for _ in range(runs + 1):
        model.zero_grad()
        start = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    from lathe.models.lora_kernels import apply_lora_kernels

    p = argparse.ArgumentParser()
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--intermediate", type=int, default=1536)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=1024, hidden_size=a.hidden, intermediate_size=a.intermediate,
                                      num_hidden_layers=a.layers, num_attention_heads=8, num_key_value_heads=8)
    base = transformers.LlamaForCausalLM(config)
    peft_model = get_peft_model(base, LoraConfig(r=a.rank, lora_alpha=2 * a.rank, target_modules="all-linear", lora_dropout=0.0))
    fused = copy.deepcopy(peft_model)
    apply_lora_kernels(SimpleNamespace(lora_mlp_kernel=True, lora_qkv_kernel=True, lora_o_kernel=True), fused)
    ids = torch.randint(0, 1024, (1, a.tokens))
    print(f"LoRA r={a.rank} on all linear layers; llama hidden {a.hidden}, intermediate {a.intermediate}, "
          f"{a.layers} layers; {a.tokens} tokens; float32 CPU, {torch.get_num_threads()} thread(s)")
    rows = {name: (saved_bytes(m, ids), step_time(m, ids, a.runs)) for name, m in (("peft", peft_model), ("kernels", fused))}
    ref_saved, ref_time = rows["peft"]
    print(f"{'path':<8} {'saved MiB':>10} {'step s':>8} {'saved ×':>8} {'time ×':>7}")
    for name, (saved, seconds) in rows.items():
        print(f"{name:<8} {saved / 2**20:>10.1f} {seconds:>8.3f} {saved / ref_saved:>8.3f} {seconds / ref_time:>7.2f}")


if __name__ == "__main__":
    main()
