"""Step metrics and completions a plugin's trainer records (public API for plugins)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any


class StepMetrics:
    """Values recorded per split ("train" / "eval") and averaged into the next log line.

    A trainer calls :meth:`add` from ``compute_loss`` and :meth:`flush_into` from ``log``:
    a training log line gets the train averages since the last one; an evaluation's log
    line (it holds ``eval_loss``) gets the eval averages with an ``eval_`` prefix.
    """

    def __init__(self) -> None:
        self._values: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

    def add(self, split: str, name: str, value: float) -> None:
        self._values[split][name].append(value)

    def recorded(self, split: str, name: str) -> list[float]:
        """The values recorded since the last flush (for tests and callbacks)."""
        return list(self._values[split].get(name, []))

    def flush_into(self, logs: dict[str, float]) -> None:
        split, prefix = ("eval", "eval_") if "eval_loss" in logs else ("train", "")
        if split == "train" and "loss" not in logs:
            return
        for name, values in self._values[split].items():
            if values:
                logs[prefix + name] = round(sum(values) / len(values), 6)
        self._values[split].clear()


Listener = Callable[[int, dict[str, Any]], None]


class CompletionLog:
    """Completions a preference/RL trainer generates, for trackers to show as tables.

    A trainer that generates or scores completions sets ``self.lathe_completions =
    CompletionLog("dpo")`` (the kind: "dpo", "kto", "orpo", "cpo", "grpo", ...) and calls
    :meth:`add` with one row per completion: ``add(step, prompt=..., chosen=...,
    rejected=..., reward_diff=...)``. Trackers (e.g. lathe-swanlab) find the attribute
    after the trainer is built and :meth:`subscribe`; with no subscriber nothing is kept.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def add(self, step: int, **row: Any) -> None:
        for listener in self._listeners:
            listener(step, dict(row))
