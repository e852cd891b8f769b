"""A rank killed mid-run stops the whole run with a clear message; the last checkpoint is
complete and resumes, here on a different number of processes (one)."""

from __future__ import annotations

from pathlib import Path

from lathe.train.checkpoint_io import complete_checkpoints
from tests.distributed.conftest import torchrun
from tests.reliability.conftest import Workspace


def test_killing_one_rank_stops_the_run_and_keeps_the_checkpoint(ws: Workspace, rank_killer: Path) -> None:
    out = ws.root / "out"
    common = {"max_steps": 4, "save_steps": 2, "micro_batch_size": 2, "plugins": ["rank_killer"],
              "auto_resume_from_checkpoints": True, "ddp_timeout": 60, "output_dir": str(out)}
    env = {"PYTHONPATH": str(rank_killer), "LATHE_TEST_KILL_AFTER_SAVE": "2", "LATHE_TEST_KILL_RANK": "1"}
    killed = torchrun(ws, "train", ws.config(**common), env=env)
    assert killed.returncode != 0
    assert "rank 1 failed first (signal SIGKILL)" in killed.stderr, killed.stderr[-3000:]
    assert "the torchrun run failed" in killed.stderr
    assert "Traceback" not in killed.stderr.split("lathe: rank 1 failed first")[-1]
    assert not (out / "model.safetensors").exists()
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-2"]
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]

    # the checkpoint of two processes resumes on one (DDP keeps full weights and optimizer state)
    resumed = ws.lathe("train", str(ws.config(**{**common, "micro_batch_size": 4})), env={"PYTHONPATH": str(rank_killer)})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint-2" in resumed.stderr
    assert (out / "model.safetensors").exists()
