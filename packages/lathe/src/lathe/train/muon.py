"""``optimizer: muon``: torch's Muon on the hidden weight matrices, AdamW on everything else.

Muon orthogonalises the update of a 2-D weight matrix, which suits hidden linear layers
but not embeddings, the LM head, norms or biases; those are trained with AdamW, as in the
Muon reference setup. The two inner optimizers share this object's ``param_groups`` (the
same dicts), so the learning-rate scheduler drives both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


def _groups(params: Iterable[Any]) -> list[dict[str, Any]]:
    items = list(params)
    if items and not isinstance(items[0], dict):
        return [{"params": items}]
    return [dict(g) for g in items]


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon for 2-D parameters not listed in ``adamw_only``; AdamW for the rest."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum: float = 0.95,
        adamw_only: frozenset[int] = frozenset(),
    ) -> None:
        groups = _groups(params)
        super().__init__(groups, {"lr": lr, "weight_decay": weight_decay})
        muon_groups, adam_groups = [], []
        for group in self.param_groups:
            options = {k: v for k, v in group.items() if k != "params"}
            matrices = [p for p in group["params"] if p.ndim == 2 and id(p) not in adamw_only]
            chosen = {id(p) for p in matrices}
            rest = [p for p in group["params"] if id(p) not in chosen]
            if matrices:
                muon_groups.append({**options, "params": matrices})
            if rest:
                adam_groups.append({**options, "params": rest})
        self.muon = torch.optim.Muon(muon_groups, lr=lr, weight_decay=weight_decay, momentum=momentum) if muon_groups else None
        self.adamw = torch.optim.AdamW(adam_groups, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps) if adam_groups else None
        self.param_groups = [g for opt in self._parts() for g in opt.param_groups]

    def _parts(self) -> list[torch.optim.Optimizer]:
        return [opt for opt in (self.muon, self.adamw) if opt is not None]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self._parts():
            opt.step()
        return loss

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {"muon": self.muon.state_dict() if self.muon else None,
                "adamw": self.adamw.state_dict() if self.adamw else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        for key, opt in (("muon", self.muon), ("adamw", self.adamw)):
            if opt is not None and state_dict.get(key) is not None:
                opt.load_state_dict(state_dict[key])
        self.param_groups = [g for opt in self._parts() for g in opt.param_groups]
