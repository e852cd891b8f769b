"""Throwaway trainer plugins for the tests: one that logs completions as a preference trainer
would, one with profiled methods."""

from __future__ import annotations

import types
from typing import Any

from lathe.hookspecs import hookimpl


def trainer_plugin(cls: type) -> types.ModuleType:
    module = types.ModuleType("fake_trainer")
    module.lathe_trainer_cls = hookimpl(lambda: cls)  # type: ignore[attr-defined]
    return module


def completion_trainer(per_step: int = 2) -> type:
    from transformers import Trainer

    from lathe.metrics import CompletionLog

    class FakeDPOTrainer(Trainer):
        """Logs ``per_step`` completions per optimizer step through ``lathe_completions``."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.lathe_completions = CompletionLog("dpo")

        def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
            step = self.state.global_step + 1
            for i in range(per_step):
                self.lathe_completions.add(step, prompt=f"p{step}.{i}", chosen="yes", rejected="no",
                                           reward_diff=0.5 * i)
            return super().compute_loss(*args, **kwargs)

    return FakeDPOTrainer


def profiled_trainer() -> type:
    from transformers import Trainer

    from lathe_swanlab import (
        ProfilingConfig,
        swanlab_profile,
        swanlab_profiling_context,
        swanlab_profiling_context_advanced,
    )

    throttled = ProfilingConfig(min_duration_ms=0.0, log_interval=2)

    class ProfiledTrainer(Trainer):
        @swanlab_profile
        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            return super().training_step(*args, **kwargs)

        def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
            with swanlab_profiling_context(self, "forward_pass"):
                loss = super().compute_loss(*args, **kwargs)
            with swanlab_profiling_context_advanced(self, "throttled_op", config=throttled):
                pass
            return loss

    return ProfiledTrainer
