"""Callbacks that protect a long run: stop (or skip) on non-finite gradients, and turn
SIGINT/SIGTERM into "save a checkpoint at this step, then stop"."""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Literal

import torch
from transformers import TrainerCallback

from lathe.errors import Interrupted, LatheError


class NonFiniteError(LatheError):
    """The loss or a gradient became NaN/Inf; the run stopped before the optimizer step."""


class NonFiniteGuard(TrainerCallback):
    """Checks every gradient before the optimizer step.

    A NaN/Inf loss always reaches the gradients, so this catches both. ``stop`` raises
    :class:`NonFiniteError` naming the step (nothing is saved from the bad step, so the
    last checkpoint stays the last good one); ``skip`` drops the step's gradients, which
    torch optimizers then leave untouched (a ``None`` grad is skipped, moments included).
    """

    def __init__(self, policy: Literal["stop", "skip"] = "stop"):
        self.policy = policy
        self.skipped_steps: list[int] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        if model is None:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads or bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            return
        step = state.global_step + 1
        if self.policy == "skip":
            self.skipped_steps.append(step)
            print(f"lathe: non-finite gradient at step {step}; step skipped (nan_policy: skip)", file=sys.stderr)
            for p in model.parameters():
                p.grad = None
            return
        bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise NonFiniteError(
            f"non-finite loss or gradient at step {step} (in {shown}); the run stopped and the last "
            "saved checkpoint is kept. Lower learning_rate, check the data, or set nan_policy: skip"
        )


class GracefulInterrupt(TrainerCallback):
    """First SIGINT/SIGTERM: finish the current step, save a checkpoint, stop. Second SIGINT: abort."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None
        self.step: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        print(f"\nlathe: {self.received} received: saving a checkpoint after this step, then stopping "
              "(Ctrl-C again to abort without saving)", file=sys.stderr)

    def install(self) -> None:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        import threading

        if threading.current_thread() is threading.main_thread():
            self.install()

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.received is not None:
            self.step = state.global_step
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.uninstall()


def raise_if_interrupted(trainer: object) -> None:
    """After ``train()`` returns: if a signal stopped it, say where the checkpoint is and exit."""
    handler = trainer.callback_handler  # type: ignore[attr-defined]
    for callback in handler.callbacks:
        if isinstance(callback, GracefulInterrupt) and callback.received is not None:
            checkpoint = f"{trainer.args.output_dir}/checkpoint-{callback.step}"  # type: ignore[attr-defined]
            raise Interrupted(
                f"{callback.received} received: stopped at step {callback.step} after saving {checkpoint}; "
                "run again with auto_resume_from_checkpoints: true to continue",
                int(signal.Signals[callback.received]),
            )
