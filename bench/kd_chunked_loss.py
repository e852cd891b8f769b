"""lathe-kd's chunked, checkpointed distillation loss beside a dense computation of the same loss.

    python bench/kd_chunked_loss.py [--positions 1024] [--vocab 32000] [--hidden 256] [--chunk 256]

Prints, for forward + backward, the time of each and the bytes each keeps for the
backward pass (measured with saved-tensor hooks), as ratios chunked / dense. The dense
baseline builds the full positions × vocab logits once, as a plain implementation would.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lathe_kd.loss import chunked_kd_loss, topk_divergence


def dense_loss(hidden, head, labels, ids, lp, temperature, beta):  # type: ignore[no-untyped-def]
    logits = head(hidden).float()
    ce = F.cross_entropy(logits, labels, reduction="sum")
    student = torch.log_softmax(logits / temperature, -1).gather(-1, ids)
    kd = topk_divergence(student, lp, torch.isfinite(lp), beta).sum()
    n = labels.numel()
    return temperature**2 * kd / n + ce / n


def measure(step: Callable[[], torch.Tensor], runs: int) -> tuple[float, int]:
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    times = []
    for _ in range(runs):
        saved = 0
        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = step()
        loss.backward()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], saved


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--positions", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--topk", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    a = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(a.positions, a.hidden, generator=g, requires_grad=True)
    head = torch.nn.Linear(a.hidden, a.vocab, bias=False)
    labels = torch.randint(0, a.vocab, (a.positions,), generator=g)
    ids = torch.randint(0, a.vocab, (a.positions, a.topk), generator=g)
    lp = torch.log_softmax(torch.randn(a.positions, a.topk, generator=g), -1)
    dense_t, dense_b = measure(lambda: dense_loss(hidden, head, labels, ids, lp, 2.0, 0.5), a.runs)
    chunk_t, chunk_b = measure(lambda: chunked_kd_loss(hidden, head, labels, ids, lp, temperature=2.0, beta=0.5,
                                                       ce_alpha=1.0, chunk_size=a.chunk).loss, a.runs)
    print(f"positions {a.positions}, vocab {a.vocab}, hidden {a.hidden}, top-k {a.topk}, chunk {a.chunk}")
    print(f"dense  : {dense_t * 1000:8.1f} ms  saved for backward {dense_b / 2**20:8.1f} MiB")
    print(f"chunked: {chunk_t * 1000:8.1f} ms  saved for backward {chunk_b / 2**20:8.1f} MiB")
    print(f"chunked / dense: time {chunk_t / dense_t:.2f}x, saved memory {chunk_b / dense_b:.4f}x")


if __name__ == "__main__":
    main()
