"""Keeping every zero of the targeted weights exactly zero through training.

For each targeted weight the mask is ``weight != 0`` taken when the modifier starts
(``start``, in epochs). While it is active:

- the gradient is masked as it is computed (a tensor hook), so the zeros neither move
  nor count in the gradient norm that clipping uses;
- after every optimizer step the weight is multiplied by the mask again, because the
  update of a zero-gradient entry need not be zero (AdamW's decoupled weight decay, a
  momentum restored from a checkpoint taken before ``start``, or any optimizer a plugin
  brings).

On resume the masks are taken again from the restored weights, whose zeros are exactly
those of the run that saved them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from lathe.errors import LatheError
from lathe_llmcompressor.recipe import PruningSpec
from lathe_llmcompressor.targets import targeted_modules, unmatched

if TYPE_CHECKING:
    import torch


@dataclass
class ActiveMask:
    """The masks of one modifier while it is active, and the gradient hooks it placed."""

    masks: dict[str, tuple[torch.nn.Parameter, torch.Tensor]]
    hooks: list[Any] = field(default_factory=list)

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()
        self.hooks.clear()


def build_masks(model: torch.nn.Module, spec: PruningSpec) -> ActiveMask:
    """The masks of ``spec``'s targets on ``model``, with gradient hooks on trainable weights."""
    import torch

    modules = targeted_modules(model, spec.targets)
    if not modules:
        raise LatheError(
            f"llmcompressor.recipe ({spec.stage} stage): targets {list(spec.targets)} match no weight of the model"
        )
    for target in unmatched(model, spec.targets):
        print(f"lathe: llmcompressor: target {target!r} matches no weight", file=sys.stderr)
    active = ActiveMask(masks={})
    with torch.no_grad():
        for name, module in modules.items():
            weight = module.weight
            mask = weight != 0
            active.masks[name] = (weight, mask)
            if weight.requires_grad:
                active.hooks.append(weight.register_hook(lambda grad, m=mask: grad * m))
    zeros = sum(int((~m).sum()) for _, m in active.masks.values())
    total = sum(m.numel() for _, m in active.masks.values())
    print(
        f"lathe: llmcompressor: {spec.stage} stage keeps {zeros:,} of {total:,} targeted weights at zero "
        f"({100 * zeros / max(total, 1):.1f}% sparse, {len(modules)} modules)",
        file=sys.stderr,
    )
    return active


def apply_masks(active: ActiveMask) -> None:
    import torch

    with torch.no_grad():
        for weight, mask in active.masks.values():
            weight.mul_(mask)


class ConstantSparsityCallback(TrainerCallback):
    """Starts and ends each ConstantPruningModifier by epoch and enforces its masks."""

    def __init__(self, specs: list[PruningSpec]):
        self.specs = specs
        self.active: dict[int, ActiveMask] = {}
        self.ended: set[int] = set()
        self.model: torch.nn.Module | None = None

    def _update(self, epoch: float) -> None:
        assert self.model is not None
        for index, spec in enumerate(self.specs):
            running = spec.start <= epoch and (spec.end is None or epoch < spec.end)
            if running and index not in self.active and index not in self.ended:
                self.active[index] = build_masks(self.model, spec)
                apply_masks(self.active[index])
            elif not running and index in self.active:
                self.active.pop(index).remove()
                self.ended.add(index)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self.model = model
        self._update(state.epoch or 0.0)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._update(state.epoch or 0.0)

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for active in self.active.values():
            apply_masks(active)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for active in self.active.values():
            active.remove()
        self.active.clear()
