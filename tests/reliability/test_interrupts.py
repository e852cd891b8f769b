"""SIGINT/SIGTERM during `lathe train`: a checkpoint at the current step, a clear message, exit 130/143."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.conftest import Workspace


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_saves_the_current_step_and_exits_clearly(ws: Workspace, signaller_path: Path, sig: str, code: int) -> None:
    env = {"PYTHONPATH": str(signaller_path), "LATHE_TEST_SIGNAL_AT": "3", "LATHE_TEST_SIGNAL": sig}
    cfg = ws.config(plugins=["signaller"], max_steps=50, save_steps=100, auto_resume_from_checkpoints=True)
    result = ws.lathe("train", str(cfg), env=env)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{sig} received: stopped at step 3" in result.stderr
    assert "auto_resume_from_checkpoints" in result.stderr
    out = ws.root / "out"
    assert (out / "checkpoint-3" / "lathe_checkpoint_complete.json").exists()
    assert not (out / "model.safetensors").exists(), "an interrupted run must not look finished"

    resumed = ws.lathe("train", str(cfg), env={"PYTHONPATH": str(signaller_path)})
    assert resumed.returncode == 0, resumed.stderr
    assert "checkpoint-3" in resumed.stderr and (out / "model.safetensors").exists()
