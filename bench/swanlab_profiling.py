"""lathe-swanlab's profiling overhead: a profiled training step beside the same step unprofiled.

    python bench/swanlab_profiling.py [--steps 30] [--hidden 256] [--seq 256]

A SwanLab run is active (offline, in a temporary folder) for both variants, so the difference
is what ``@swanlab_profile`` adds: two clock reads and one ``swanlab.log`` per call. Prints the
per-call cost measured on an empty method (many calls), its share of one real training step
(forward + backward + AdamW) of a small Llama-shaped model, and the direct A/B ratio of the two
steps (alternated step by step, median of the paired ratios; on a shared CPU that ratio carries
noise larger than the effect, which is why the per-call figure is given too). The seed promises < 0.1%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    os.environ["SWANLAB_LOG_DIR"] = tempfile.mkdtemp(prefix="swanlog-bench-")

    import swanlab

    from lathe.testing import tiny_model
    from lathe_swanlab import swanlab_profile
    from lathe_swanlab.config import SwanLabConfig

    torch.manual_seed(0)
    model = tiny_model("llama", hidden_size=args.hidden, intermediate_size=4 * args.hidden, num_hidden_layers=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, model.config.vocab_size, (4, args.seq))

    class Steps:
        lathe_cfg = SwanLabConfig(swanlab_project="bench", swanlab_mode="offline")

        def plain_step(self) -> None:
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        @swanlab_profile
        def profiled_step(self) -> None:
            self.plain_step()

        def empty(self) -> None:
            pass

        @swanlab_profile
        def profiled_empty(self) -> None:
            pass

    steps = Steps()
    swanlab.init(project="bench", mode="offline")
    try:
        for _ in range(3):
            steps.plain_step()

        def per_call(method: Any) -> float:
            start = time.perf_counter()
            for _ in range(args.calls):
                method()
            return (time.perf_counter() - start) / args.calls

        overhead = min(per_call(steps.profiled_empty) - per_call(steps.empty) for _ in range(3))

        def timed(method: Any) -> float:
            start = time.perf_counter()
            method()
            return time.perf_counter() - start

        plain, profiled = [], []
        for i in range(args.steps):  # alternate step by step (and which goes first), so drift hits both
            if i % 2:
                profiled.append(timed(steps.profiled_step))
                plain.append(timed(steps.plain_step))
            else:
                plain.append(timed(steps.plain_step))
                profiled.append(timed(steps.profiled_step))
    finally:
        swanlab.finish()
    step = statistics.median(plain)
    ratio = statistics.median(p / q for p, q in zip(profiled, plain, strict=True))
    print(f"model: llama, hidden {args.hidden}, 4 layers, batch 4 x {args.seq} tokens; torch {torch.__version__}, "
          f"swanlab {swanlab.__version__}, {torch.get_num_threads()} threads")
    print(f"profiling cost per call (clock + swanlab.log, offline run): {overhead * 1e6:.1f} us")
    print(f"training step (median of {args.steps}): {step * 1e3:.1f} ms")
    print(f"per-call cost / step: {100 * overhead / step:.4f}%  (seed promises < 0.1%)")
    print(f"A/B profiled / plain step, median of paired ratios: {ratio:.4f}  (CPU noise exceeds the effect)")


if __name__ == "__main__":
    main()
