"""The plugin-state contract: a callback's checkpoint_state() is saved in every checkpoint and
handed back to load_checkpoint_state() before a resumed run trains; a checkpoint without it
is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import base_config
from lathe.train.plugin_state import STATE_FILE
from tests.train.conftest import make_plugins


class Counter(TrainerCallback):
    """Counts optimizer steps and keeps a tensor: state that a resume must continue."""

    def __init__(self) -> None:
        self.steps, self.total, self.loaded = 0, torch.zeros(3), None

    def on_optimizer_step(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.steps += 1
        self.total += 1.0

    def checkpoint_state(self) -> dict:  # type: ignore[type-arg]
        return {"steps": self.steps, "total": self.total.clone()}

    def load_checkpoint_state(self, state: dict) -> None:  # type: ignore[type-arg]
        self.loaded = state
        self.steps, self.total = state["steps"], state["total"]


def _run(tmp_path: Path, callback: TrainerCallback | None, **overrides):  # type: ignore[no-untyped-def]
    from lathe.config import validate
    from lathe.train.run import train

    hooks = {"lathe_callbacks": lambda cfg: [callback]} if callback is not None else {}
    plugins = make_plugins(**hooks) if hooks else Plugins()
    cfg = validate(base_config(tmp_path, max_steps=4, save_steps=2, **overrides), plugins)
    return train(cfg, plugins)


def test_plugin_state_is_saved_and_restored_on_resume(tmp_path: Path) -> None:
    first = Counter()
    _run(tmp_path, first)
    saved = torch.load(tmp_path / "out" / "checkpoint-2" / STATE_FILE, weights_only=True)
    (key,) = saved
    assert key.endswith("Counter") and saved[key]["steps"] == 2
    torch.testing.assert_close(saved[key]["total"], torch.full((3,), 2.0))

    resumed = Counter()
    _run(tmp_path, resumed, resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"),
         output_dir=str(tmp_path / "again"))
    assert resumed.loaded is not None and resumed.loaded["steps"] == 2
    assert resumed.steps == first.steps == 4  # continued from 2, not restarted from 0


def test_resuming_without_the_saved_state_is_refused(tmp_path: Path) -> None:
    _run(tmp_path, None)  # checkpoints written without the stateful plugin
    with pytest.raises(LatheError, match="holds no saved state for .*Counter"):
        _run(tmp_path, Counter(), resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"),
             output_dir=str(tmp_path / "again"))
