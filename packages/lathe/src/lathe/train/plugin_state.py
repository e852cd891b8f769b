"""Plugin state that changes training (an EMA, a schedule, a step counter, an RNG), saved
with every checkpoint and restored on resume, so a resumed run equals an uninterrupted one.

The contract (docs/plugins.md): a trainer callback a plugin returns from
``lathe_callbacks``, or the trainer class it returns from ``lathe_trainer_cls``, that has
state defines two methods:

- ``checkpoint_state() -> dict`` — tensors, numbers, strings, lists and dicts of them;
- ``load_checkpoint_state(state: dict) -> None`` — called before training resumes.

lathe writes every such object's state to ``lathe_plugin_state.pt`` inside each checkpoint
(read back with ``torch.load(weights_only=True)``: no code runs when it is loaded), keyed by
the object's class. Resuming from a checkpoint that lacks the state of an enabled plugin
is an error: silently restarting the state is what this exists to prevent.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lathe.errors import LatheError

if TYPE_CHECKING:
    from transformers import Trainer

STATE_FILE = "lathe_plugin_state.pt"


def stateful_objects(trainer: Trainer) -> dict[str, Any]:
    """The trainer and its callbacks that keep checkpoint state, by a key stable across runs."""
    found: dict[str, Any] = {}
    for obj in [trainer, *trainer.callback_handler.callbacks]:
        if callable(getattr(obj, "checkpoint_state", None)) and callable(getattr(obj, "load_checkpoint_state", None)):
            base = f"{type(obj).__module__}.{type(obj).__qualname__}"
            key, n = base, 1
            while key in found:
                n += 1
                key = f"{base}#{n}"
            found[key] = obj
    return found


def save_plugin_state(trainer: Trainer, checkpoint: Path) -> None:
    objects = stateful_objects(trainer)
    if objects:
        state = {key: obj.checkpoint_state() for key, obj in objects.items()}
        torch.save(state, checkpoint / STATE_FILE)


def load_plugin_state(trainer: Trainer, checkpoint: Path) -> None:
    objects = stateful_objects(trainer)
    if not objects:
        return
    path = checkpoint / STATE_FILE
    saved = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else {}
    missing = [key for key in objects if key not in saved]
    if missing:
        raise LatheError(
            f"resume: checkpoint {checkpoint} holds no saved state for {', '.join(missing)} (it was written "
            "without that plugin, or by an older lathe); resuming would silently restart that state"
        )
    for key, obj in objects.items():
        obj.load_checkpoint_state(saved[key])
