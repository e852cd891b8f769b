"""Learning-rate schedules Axolotl adds to transformers' (``SchedulerType``) names.

transformers builds every ``SchedulerType`` name from ``lr_scheduler`` and
``lr_scheduler_kwargs``. lathe builds these itself, with Axolotl's meanings:

- ``cosine`` + ``cosine_min_lr_ratio``: linear warmup, then cosine from the peak down to
  ``ratio × peak`` at the last step;
- ``cosine`` + ``cosine_min_lr_ratio`` + ``cosine_constant_lr_ratio``: the same cosine, but it
  reaches ``ratio × peak`` at step ``int(total × constant_ratio)`` and stays there
  (continual pre-training's "decay then constant");
- ``cosine`` + ``lr_quadratic_warmup``: warmup as ``(step / warmup)²``, then cosine to 0;
- ``rex``: linear warmup, then the reflected-exponential decay
  ``m + (1 − m)·z / (0.1 + 0.9·z)``, ``z`` the remaining fraction, ``m`` the
  ``cosine_min_lr_ratio`` (0 if unset);
- ``one_cycle``: torch's ``OneCycleLR`` peaking at ``learning_rate``, warmup share as
  ``pct_start``, cosine annealing (``lr_scheduler_kwargs`` override both).
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any

from torch.optim.lr_scheduler import LambdaLR, OneCycleLR

if TYPE_CHECKING:
    import torch

    from lathe.config import Config

def _warmup(step: int, warmup: int) -> float:
    return step / max(1, warmup)


def cosine_factor(step: int, *, warmup: int, total: int, min_ratio: float, constant_ratio: float | None) -> float:
    """Multiplier of the peak LR at ``step`` for cosine with a floor (and a constant tail)."""
    if step < warmup:
        return _warmup(step, warmup)
    end = int(total * constant_ratio) if constant_ratio is not None else total
    progress = (min(step, end) - warmup) / max(1, end - warmup)
    return max(0.0, (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))) + min_ratio


def quadratic_warmup_cosine_factor(step: int, *, warmup: int, total: int) -> float:
    if step < warmup:
        return _warmup(step, warmup) ** 2
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))


def rex_factor(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    if step < warmup:
        return _warmup(step, warmup)
    remaining = total - warmup
    if remaining <= 0 or step - warmup >= remaining:
        return min_ratio
    z = (remaining - (step - warmup)) / remaining
    return min_ratio + (1 - min_ratio) * z / (0.1 + 0.9 * z)


def build_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, total: int, warmup: int) -> Any:
    """lathe's schedule for the config, or None when transformers builds it from the name."""
    kwargs = dict(cfg.lr_scheduler_kwargs or {})
    if cfg.lr_scheduler == "one_cycle":
        kwargs.setdefault("pct_start", warmup / max(1, total))
        kwargs.setdefault("anneal_strategy", "cos")
        return OneCycleLR(optimizer, max_lr=cfg.learning_rate, total_steps=total, **kwargs)
    if cfg.lr_scheduler == "rex":
        return LambdaLR(optimizer, partial(rex_factor, warmup=warmup, total=total, min_ratio=cfg.cosine_min_lr_ratio or 0.0))
    if cfg.lr_scheduler != "cosine":
        return None
    if cfg.lr_quadratic_warmup:
        return LambdaLR(optimizer, partial(quadratic_warmup_cosine_factor, warmup=warmup, total=total))
    if cfg.cosine_min_lr_ratio is not None:
        return LambdaLR(optimizer, partial(
            cosine_factor, warmup=warmup, total=total, min_ratio=cfg.cosine_min_lr_ratio,
            constant_ratio=cfg.cosine_constant_lr_ratio,
        ))
    return None
