"""Peak memory and time of the loss (forward + backward) by vocabulary size, four ways, as ratios.

    python bench/loss_memory.py [--tokens 4096] [--hidden 512] [--vocabs 32000,128256,256000] [--runs 2]

Methods, all computing the same mean cross-entropy of ``tokens`` hidden states through a
``vocab × hidden`` output layer (float32, CPU):

- standard: ``F.cross_entropy(h @ Wᵀ, y)``, the logits materialised (the baseline);
- cce: Cut Cross Entropy, ``linear_cross_entropy(..., impl="torch_compile")``;
- liger_chunked: liger's pure-torch chunked loss (``LigerFusedLinearJSDLoss`` with only its
  hard, cross-entropy term, ``--chunk`` positions per chunk; it also runs its teacher pass,
  which this use does not need);
- kd_chunked: lathe-kd's chunked, checkpointed loss with no teacher rows (cross-entropy only),
  ``--chunk`` positions per chunk.

Each method runs in its own process (Linux: it reads /proc/self/status). After one warm-up
pass (which includes torch.compile's compilation) the process's peak resident memory is
reset; "peak" is how far the timed passes raise it above the resident memory before them
(the inputs, weights and compiled code excluded): what the loss adds. Large buffers are
mmapped (MALLOC_MMAP_THRESHOLD_) so freed memory leaves the resident set at once. Time is
the median wall time of ``--runs`` forward + backward passes. Ratios are against
``standard`` at the same vocab.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

METHODS = ("standard", "cce", "liger_chunked", "kd_chunked")


def _loss_fn(method: str, chunk: int):  # type: ignore[no-untyped-def]
    import torch
    import torch.nn.functional as F

    if method == "standard":
        return lambda h, w, y: F.cross_entropy(h @ w.T, y)
    if method == "cce":
        from cut_cross_entropy import linear_cross_entropy

        return lambda h, w, y: linear_cross_entropy(h, w, y, impl="torch_compile")
    if method == "liger_chunked":
        from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss

        loss = LigerFusedLinearJSDLoss(weight_hard_loss=1.0, weight_soft_loss=0.0, compiled=True, chunk_size=chunk)
        return lambda h, w, y: loss(h, w, h.detach(), w.detach(), y)
    if method == "kd_chunked":
        from lathe_kd.loss import chunked_kd_loss

        def kd(h, w, y):  # type: ignore[no-untyped-def]
            ids = torch.zeros(len(y), 1, dtype=torch.long)
            lp = torch.full((len(y), 1), float("-inf"))
            return chunked_kd_loss(h, lambda x: x @ w.T, y, ids, lp, kd_alpha=0.0, ce_alpha=1.0, chunk_size=chunk).loss

        return kd
    raise ValueError(method)


def child(method: str, tokens: int, hidden: int, vocab: int, runs: int, chunk: int) -> None:
    """Measure one method in this process; print one JSON line."""
    import torch

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    h = torch.randn(tokens, hidden, generator=g, requires_grad=True)
    w = (torch.randn(vocab, hidden, generator=g) / hidden**0.5).requires_grad_(True)
    y = torch.randint(0, vocab, (tokens,), generator=g)
    fn = _loss_fn(method, chunk)
    times, value, added = [], float("nan"), 0
    for i in range(runs + 1):
        h.grad = w.grad = None
        if i == 1:  # after the warm-up (and any compilation): restart the peak from here
            start_rss = _status_kib("VmRSS")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        start = time.perf_counter()
        loss = fn(h, w, y)
        loss.backward()
        if i:
            times.append(time.perf_counter() - start)
        value = float(loss.detach())
    added = (_status_kib("VmHWM") - start_rss) * 1024
    print(json.dumps({"method": method, "added": added, "time": sorted(times)[len(times) // 2], "loss": value}))


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def measure(method: str, a: argparse.Namespace, vocab: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", method, "--tokens", str(a.tokens), "--hidden", str(a.hidden),
           "--vocabs", str(vocab), "--runs", str(a.runs), "--chunk", str(a.chunk)]
    # every large buffer is mmapped, so a freed one leaves the resident set at once
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--vocabs", default="32000,128256,256000")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--chunk", type=int, default=256, help="positions per chunk of the chunked losses")
    parser.add_argument("--child")
    a = parser.parse_args()
    vocabs = [int(v) for v in a.vocabs.split(",")]
    if a.child:
        child(a.child, a.tokens, a.hidden, vocabs[0], a.runs, a.chunk)
        return
    methods = a.methods.split(",")
    print(f"loss forward+backward, {a.tokens} tokens, hidden {a.hidden}, chunk {a.chunk}, float32, CPU, 1 thread")
    print(f"{'vocab':>7} {'method':<14} {'peak MiB':>9} {'time s':>8} {'mem ×':>7} {'time ×':>7}  loss")
    for vocab in vocabs:
        rows = {m: measure(m, a, vocab) for m in methods}
        ref = rows.get("standard")
        for m, r in rows.items():
            added = r["added"] / 2**20
            mem = f"{r['added'] / max(ref['added'], 1):.3f}" if ref else "-"
            tim = f"{r['time'] / ref['time']:.2f}" if ref and ref["time"] else "-"
            print(f"{vocab:>7} {m:<14} {added:>9.1f} {r['time']:>8.2f} {mem:>7} {tim:>7}  {r['loss']:.4f}", flush=True)


if __name__ == "__main__":
    main()
