"""Per-step histogram of the trainable parameters' gradient norms, one JSON line per step."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

# Decades of the gradient norm: a vanishing layer shows up in the low buckets, a spike in the top one.
EDGES = (1e-8, 1e-6, 1e-4, 1e-2, 1.0, 1e2)
LABELS = ("<1e-8", "1e-8..1e-6", "1e-6..1e-4", "1e-4..1e-2", "1e-2..1", "1..1e2", ">=1e2")


def histogram(norms: Iterable[float]) -> dict[str, int]:
    """How many norms fall in each bucket of ``LABELS`` (a non-finite norm counts in the top one)."""
    counts = dict.fromkeys(LABELS, 0)
    for norm in norms:
        index = len(EDGES) if not math.isfinite(norm) else sum(norm >= edge for edge in EDGES)
        counts[LABELS[index]] += 1
    return counts


class GradNormHistogram(TrainerCallback):
    """Fires before each optimizer step (after clipping) and appends the step's histogram."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and state.global_step == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is None or not state.is_world_process_zero:
            return
        norms = {name: float(p.grad.detach().float().norm()) for name, p in model.named_parameters()
                 if p.requires_grad and p.grad is not None}
        if not norms:
            return
        largest = max(norms, key=lambda n: norms[n] if math.isfinite(norms[n]) else math.inf)
        line = {"step": state.global_step + 1, "histogram": histogram(norms.values()),
                "max": norms[largest], "max_param": largest}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
