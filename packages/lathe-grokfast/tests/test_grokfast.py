"""Through a real run: the gradient the optimizer receives is g + λ·EMA(g), computed by hand."""

from __future__ import annotations

import types
from pathlib import Path

import torch

from lathe.hookspecs import hookimpl
from lathe.plugins import PluginInfo, Plugins
from lathe.testing import base_config, run_training

ALPHA, LAMB, STEPS = 0.8, 1.5, 4


class RecordingOptimizer(torch.optim.SGD):
    """Records the gradients handed to it and leaves the weights alone, so every step's raw
    gradient is the same in a run with and a run without the filter."""

    def __init__(self, model: torch.nn.Module):
        self.named = list(model.named_parameters())
        super().__init__([p for _, p in self.named], lr=0.1)
        self.seen: list[dict[str, torch.Tensor]] = []

    def step(self, closure=None):  # type: ignore[no-untyped-def,override]
        self.seen.append({n: p.grad.detach().clone() for n, p in self.named if p.grad is not None})


def _run(tmp_path: Path, grokfast: bool) -> list[dict[str, torch.Tensor]]:
    made: list[RecordingOptimizer] = []
    recorder = types.ModuleType("recorder")

    @hookimpl
    def lathe_optimizer(cfg, model):  # type: ignore[no-untyped-def]
        made.append(RecordingOptimizer(model))
        return made[-1]

    recorder.lathe_optimizer = lathe_optimizer  # type: ignore[attr-defined]
    names = ["grokfast"] if grokfast else []
    infos = [*Plugins.load(names).infos.values(), PluginInfo("recorder", "recorder", "0", module=recorder)]
    cfg = base_config(tmp_path, max_steps=STEPS, max_grad_norm=None, micro_batch_size=2,
                      output_dir=str(tmp_path / f"out-{grokfast}"), plugins=names,
                      **({"grokfast_alpha": ALPHA, "grokfast_lamb": LAMB} if grokfast else {}))
    run_training(cfg, Plugins(infos))
    return made[0].seen


def test_optimizer_sees_gradient_plus_lamb_times_ema(tmp_path: Path) -> None:
    raw = _run(tmp_path, grokfast=False)
    filtered = _run(tmp_path, grokfast=True)
    assert len(raw) == len(filtered) == STEPS
    assert not torch.allclose(raw[0]["lm_head.weight"], raw[1]["lm_head.weight"])  # the batches differ
    ema: dict[str, torch.Tensor] = {}
    for step in range(STEPS):
        for name, g in raw[step].items():
            ema[name] = g.clone() if name not in ema else ALPHA * ema[name] + (1 - ALPHA) * g
            torch.testing.assert_close(filtered[step][name], g + LAMB * ema[name], rtol=1e-4, atol=1e-7,
                                       msg=f"step {step + 1}: {name}")
