"""Multi-process runs on this CPU: gloo, 2 processes, the tiniest model, a few steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.reliability.conftest import Workspace, install_test_plugin

RANK_KILLER = '''
import os
import signal

from lathe.hookspecs import hookimpl


@hookimpl
def lathe_callbacks(cfg):
    from transformers import TrainerCallback

    step = int(os.environ.get("LATHE_TEST_KILL_AFTER_SAVE", "0"))
    victim = os.environ.get("LATHE_TEST_KILL_RANK", "1")

    class KillRankAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step and os.environ.get("RANK") == victim:
                os.kill(os.getpid(), signal.SIGKILL)

    return [KillRankAfterSave()]
'''


@pytest.fixture(scope="session")
def rank_killer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plugin ``rank_killer``: SIGKILLs rank LATHE_TEST_KILL_RANK after the checkpoint of step
    LATHE_TEST_KILL_AFTER_SAVE."""
    return install_test_plugin(tmp_path_factory.mktemp("site"), "rank_killer", RANK_KILLER)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lathe.testing import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def ws(tmp_path: Path, model_dir: Path) -> Workspace:
    return Workspace(tmp_path, model_dir)


def torchrun(ws: Workspace, command: str, cfg: Path, nproc: int = 2, env: dict[str, str] | None = None,
             *launcher_args: str) -> Any:
    """``lathe <command> cfg --launcher torchrun --num-processes N -- --standalone`` (a free port)."""
    return ws.lathe(command, str(cfg), "--launcher", "torchrun", "--num-processes", str(nproc), "--",
                    "--standalone", *launcher_args, env=env)


def weights(out: Path) -> dict[str, torch.Tensor]:
    name = "adapter_model.safetensors" if (out / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(out / name)


def assert_same_weights(got: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], atol: float) -> None:
    assert got.keys() == ref.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=0, atol=atol, msg=name)
