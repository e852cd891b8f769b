"""DDP through a launcher (accelerate here): two processes with half the micro-batch each train exactly as one
process with the whole batch (same global batch, same sample order)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.distributed.conftest import assert_same_weights, torchrun, weights
from tests.reliability.conftest import Workspace, assert_clean_failure

# float32 on CPU: the two runs differ only in the order of floating-point reductions
ATOL = 1e-5


def _losses(out: Path) -> list[float]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return [h["loss"] for h in history if "loss" in h]


def test_ddp_two_processes_equal_one_process_with_the_same_global_batch(ws: Workspace) -> None:
    common = {"max_steps": 3, "save_steps": 3, "ddp_timeout": 120, "ddp_find_unused_parameters": False}
    one = ws.lathe("train", str(ws.config(output_dir=str(ws.root / "one"), micro_batch_size=4, **common)))
    assert one.returncode == 0, one.stderr
    # launched by accelerate (torchrun launches the other multi-process tests)
    cfg = ws.config(output_dir=str(ws.root / "two"), micro_batch_size=2, **common)
    two = ws.lathe("train", str(cfg), "--launcher", "accelerate", "--num-processes", "2", "--", "--main_process_port", "0")
    assert two.returncode == 0, two.stderr
    assert "accelerate.commands.launch --num_processes 2 --multi_gpu" in two.stderr
    assert two.stderr.count("saved to") == 1  # rank 0 alone talks
    assert_same_weights(weights(ws.root / "two"), weights(ws.root / "one"), ATOL)
    one_losses = _losses(ws.root / "one" / "checkpoint-3")
    two_losses = _losses(ws.root / "two" / "checkpoint-3")
    assert len(two_losses) == len(one_losses) == 3
    for a, b in zip(one_losses, two_losses, strict=True):
        assert abs(a - b) < 1e-4, (one_losses, two_losses)


def test_a_failing_rank_stops_the_run_with_its_error(ws: Workspace) -> None:
    """Every rank reads the config; a bad data file fails on rank 0 while the others wait at the
    data barrier: the launcher stops them, lathe exits non-zero and names the failure."""
    bad = ws.root / "bad.jsonl"
    bad.write_text('{"instruction": "x", "output": "y"}\nnot json\n')
    cfg = ws.config(datasets=[{"path": str(bad), "type": "alpaca"}], ddp_timeout=60)
    run = torchrun(ws, "train", cfg)
    assert_clean_failure(run, "bad.jsonl", "the torchrun run failed")
