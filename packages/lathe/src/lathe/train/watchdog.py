"""``loss_watchdog_threshold`` / ``loss_watchdog_patience``: stop a run whose loss has blown up.

Axolotl's meaning: when the logged training loss is above the threshold for ``patience``
logs in a row (default 3), training stops. lathe stops with an error (non-zero exit) raised
while the step is being logged, before that step could be checkpointed, so the last
checkpoint on disk is the last one saved before the loss went bad, and no final model is
written over it.
"""

from __future__ import annotations

from transformers import TrainerCallback

from lathe.errors import LatheError

DEFAULT_PATIENCE = 3


class LossWatchdogError(LatheError):
    """The loss stayed above ``loss_watchdog_threshold`` for ``loss_watchdog_patience`` logs."""


class LossWatchdog(TrainerCallback):
    def __init__(self, threshold: float, patience: int | None = None) -> None:
        self.threshold = threshold
        self.patience = patience or DEFAULT_PATIENCE
        self.violations = 0

    def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if loss <= self.threshold:
            self.violations = 0
            return
        self.violations += 1
        if self.violations >= self.patience:
            raise LossWatchdogError(
                f"loss {loss:.4g} at step {state.global_step} has been above loss_watchdog_threshold "
                f"({self.threshold:g}) for {self.violations} logged steps in a row (loss_watchdog_patience: "
                f"{self.patience}); the run stopped and the last saved checkpoint in {args.output_dir} is kept. "
                "Lower learning_rate or check the data"
            )
