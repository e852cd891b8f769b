"""The EMA gradient filter and the trainer callback that applies it before each optimizer step."""

from __future__ import annotations

import torch
from transformers import TrainerCallback


class GrokfastEMA:
    """Keeps h = alpha·h + (1−alpha)·g per parameter and turns g into g + lamb·h."""

    def __init__(self, alpha: float, lamb: float):
        self.alpha = alpha
        self.lamb = lamb
        self.ema: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def apply(self, model: torch.nn.Module) -> None:
        for name, param in model.named_parameters():
            if not param.requires_grad or param.grad is None:
                continue
            grad = param.grad
            avg = self.ema.get(name)
            if avg is not None and avg.device != grad.device:  # restored from a checkpoint on the CPU
                avg = self.ema[name] = avg.to(grad.device)
            if avg is None:
                avg = self.ema[name] = grad.detach().clone()
            else:
                avg.mul_(self.alpha).add_(grad, alpha=1 - self.alpha)
            grad.add_(avg, alpha=self.lamb)


class GrokfastCallback(TrainerCallback):
    def __init__(self, alpha: float, lamb: float):
        self.filter = GrokfastEMA(alpha, lamb)

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        if model is not None:
            self.filter.apply(model)

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """The EMA, saved with each checkpoint (lathe's plugin-state contract) so a resumed run
        continues it instead of restarting it from the next gradient."""
        return {name: avg.detach().cpu() for name, avg in self.filter.ema.items()}

    def load_checkpoint_state(self, state: dict[str, torch.Tensor]) -> None:
        self.filter.ema = dict(state)
