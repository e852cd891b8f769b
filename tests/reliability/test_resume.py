"""A run killed with SIGKILL and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.reliability.conftest import Workspace


def _weights(out: Path) -> dict[str, torch.Tensor]:
    name = "adapter_model.safetensors" if (out / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(out / name)


def _losses(out: Path) -> list[tuple[int, float]]:
    last = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    return [(h["step"], h["loss"]) for h in history if "loss" in h]


CASES = {
    "full": {},
    "full-packed": {"sample_packing": True},
    "lora": {"adapter": "lora", "lora_target_linear": True},
    "lora-packed": {"adapter": "lora", "lora_target_linear": True, "sample_packing": True},
}


@pytest.mark.parametrize("case", list(CASES))
def test_sigkill_then_auto_resume_equals_uninterrupted(ws: Workspace, killer_path: Path, case: str) -> None:
    env = {"PYTHONPATH": str(killer_path)}
    common = {"max_steps": 6, "save_steps": 2, "plugins": ["killer"], "num_epochs": 3,
              "micro_batch_size": 2, "lr_scheduler": "cosine", "warmup_steps": 1, **CASES[case]}

    ref_out = ws.root / "reference"
    done = ws.lathe("train", str(ws.config(output_dir=str(ref_out), **common)), env=env)
    assert done.returncode == 0, done.stderr

    out = ws.root / "interrupted"
    cfg = ws.config(output_dir=str(out), auto_resume_from_checkpoints=True, **common)
    killed = ws.lathe("train", str(cfg), env={**env, "LATHE_TEST_KILL_AFTER_SAVE": "4"})
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "model.safetensors").exists() and not (out / "adapter_model.safetensors").exists()

    resumed = ws.lathe("train", str(cfg), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "checkpoint-4" in resumed.stdout + resumed.stderr  # says where it resumed from

    ref, got = _weights(ref_out), _weights(out)
    assert ref.keys() == got.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=0, atol=1e-6, msg=name)
    ref_losses, got_losses = _losses(ref_out), _losses(out)
    assert [s for s, _ in got_losses] == [s for s, _ in ref_losses] == list(range(1, 7))
    for (_, a), (_, b) in zip(ref_losses, got_losses, strict=True):
        assert abs(a - b) < 1e-6


def test_sigkill_in_the_middle_of_a_save_then_a_normal_run(ws: Workspace, killer_path: Path) -> None:
    env = {"PYTHONPATH": str(killer_path)}
    out = ws.root / "out"
    cfg = ws.config(output_dir=str(out), max_steps=6, save_steps=2, plugins=["killer"],
                    auto_resume_from_checkpoints=True)
    killed = ws.lathe("train", str(cfg), env={**env, "LATHE_TEST_KILL_DURING_SAVE": "4"})
    assert killed.returncode == -signal.SIGKILL
    assert (out / "checkpoint-2" / "lathe_checkpoint_complete.json").exists()
    assert not (out / "checkpoint-4").exists(), "a half-written checkpoint became visible"

    resumed = ws.lathe("train", str(cfg), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "checkpoint-2" in resumed.stdout + resumed.stderr
    assert (out / "checkpoint-6" / "lathe_checkpoint_complete.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]


def test_sigkill_while_rewriting_a_step_keeps_its_last_complete_copy(ws: Workspace, killer_path: Path) -> None:
    """Resuming from an older checkpoint rewrites the later steps; a kill between moving the old
    copy aside and publishing the new one must not lose the step (the next start restores it)."""
    env = {"PYTHONPATH": str(killer_path)}
    out = ws.root / "out"
    common = {"output_dir": str(out), "max_steps": 4, "save_steps": 2, "plugins": ["killer"]}
    first = ws.lathe("train", str(ws.config(**common)), env=env)
    assert first.returncode == 0, first.stderr
    again = ws.config(resume_from_checkpoint=str(out / "checkpoint-2"), **common)
    killed = ws.lathe("train", str(again), env={**env, "LATHE_TEST_KILL_IN_REWRITE": "1"})
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "checkpoint-4").exists()  # only the moved-aside and the staged copies exist now

    resumed = ws.lathe("train", str(ws.config(auto_resume_from_checkpoints=True, **common)), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from " + str(out / "checkpoint-4") in resumed.stderr
    assert (out / "checkpoint-4" / "lathe_checkpoint_complete.json").exists()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
