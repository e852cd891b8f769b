"""Peak memory of one forward + backward at long context, with and without ALST (TiledMLP and
chunked cross-entropy), and the longest sequence each fits in a fixed budget.

    python bench/alst_memory.py [--lengths 4096,8192,16384] [--budget-mib 1024] [--hidden 128] [--intermediate 1024] [--vocab 8192]

A small llama (2 layers, float32, CPU, sdpa attention, gradient checkpointing on, as ALST is
used) trains one step on one sequence of each length, four ways: baseline, ``tiled_mlp``
(ceil(length / 1024) shards), ``chunked_cross_entropy`` (8 chunks), and both. Each run is its
own process; "peak" is how far the step raises the process's peak resident memory above the
resident memory before it (Linux /proc/self/status; large buffers mmapped so freed memory
leaves at once): what the step adds. Ratios are against the baseline at the same length. The
longest fitting length is the largest measured length whose peak stays within ``--budget-mib``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from types import SimpleNamespace

METHODS = ("baseline", "tiled_mlp", "chunked_ce", "both")


def child(method: str, length: int, a: argparse.Namespace) -> None:
    import torch
    import transformers

    from lathe.chunked_loss import chunked_cross_entropy
    from lathe.hidden_loss import dense_loss, output_head
    from lathe.models.tiled_mlp import apply_tiled_mlp

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4)
    model = transformers.LlamaForCausalLM._from_config(config, attn_implementation="sdpa")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    if method in ("tiled_mlp", "both"):
        apply_tiled_mlp(SimpleNamespace(tiled_mlp=True, tiled_mlp_num_shards=-(-length // 1024), tiled_mlp_use_original_mlp=True), model)
    ids = torch.randint(0, a.vocab, (1, length))
    head = output_head(model)
    start = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    hidden = model(input_ids=ids, output_hidden_states=True, logits_to_keep=1).hidden_states[-1]
    if method in ("chunked_ce", "both"):
        loss = chunked_cross_entropy(hidden, head, ids, None, 8)
    else:
        loss = dense_loss(hidden, head, ids)
    loss.backward()
    added = (_status_kib("VmHWM") - start) * 1024
    print(json.dumps({"added": added, "loss": float(loss)}))


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def measure(method: str, length: int, a: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", method, "--lengths", str(length), "--hidden", str(a.hidden),
           "--intermediate", str(a.intermediate), "--vocab", str(a.vocab)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lengths", default="4096,8192,16384")
    p.add_argument("--budget-mib", type=float, default=1024)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--intermediate", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--child")
    a = p.parse_args()
    lengths = [int(v) for v in a.lengths.split(",")]
    if a.child:
        child(a.child, lengths[0], a)
        return
    print(f"one step, llama 2 layers hidden {a.hidden} intermediate {a.intermediate} vocab {a.vocab}, "
          "gradient checkpointing, float32, CPU, 1 thread")
    print(f"{'tokens':>7} {'method':<11} {'peak MiB':>9} {'mem ×':>7}  loss")
    fits = {m: 0 for m in METHODS}
    for length in lengths:
        rows = {m: measure(m, length, a) for m in METHODS}
        for m, r in rows.items():
            mib = r["added"] / 2**20
            if mib <= a.budget_mib:
                fits[m] = max(fits[m], length)
            print(f"{length:>7} {m:<11} {mib:>9.1f} {r['added'] / rows['baseline']['added']:>7.3f}  {r['loss']:.4f}", flush=True)
    print(f"longest measured length within {a.budget_mib:.0f} MiB: " + ", ".join(f"{m} {n or '-'}" for m, n in fits.items()))


if __name__ == "__main__":
    main()
