"""Staged checkpoint writes: complete ones appear whole, interrupted ones never appear."""

from __future__ import annotations

from pathlib import Path

import pytest

from lathe.train.checkpoint_io import (
    complete_checkpoints,
    latest_complete_checkpoint,
    remove_stale_staging,
    staged_checkpoint,
)


def _write(run: Path, step: int, payload: str) -> None:
    with staged_checkpoint(run, step) as staging:
        ckpt = staging / f"checkpoint-{step}"
        ckpt.mkdir()
        (ckpt / "weights.bin").write_text(payload)


def test_complete_checkpoint_appears_with_marker(tmp_path: Path) -> None:
    _write(tmp_path, 1, "one")
    _write(tmp_path, 2, "two")
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-1", "checkpoint-2"]
    assert (latest_complete_checkpoint(tmp_path) / "weights.bin").read_text() == "two"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging")]


def test_failure_while_writing_leaves_previous_checkpoint_and_no_partial(tmp_path: Path) -> None:
    _write(tmp_path, 1, "one")
    with pytest.raises(OSError), staged_checkpoint(tmp_path, 2) as staging:
        (staging / "checkpoint-2").mkdir()
        (staging / "checkpoint-2" / "weights.bin").write_text("half")
        raise OSError("disk full")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-1"]
    assert latest_complete_checkpoint(tmp_path).name == "checkpoint-1"


def test_unmarked_checkpoints_are_never_resumed_and_stale_staging_is_removed(tmp_path: Path) -> None:
    _write(tmp_path, 1, "one")
    (tmp_path / "checkpoint-5").mkdir()  # e.g. half-written by a tool without staging
    (tmp_path / ".staging-7-123" / "checkpoint-7").mkdir(parents=True)  # left by a SIGKILL
    assert latest_complete_checkpoint(tmp_path).name == "checkpoint-1"
    assert [p.name for p in remove_stale_staging(tmp_path)] == [".staging-7-123"]


def test_rewriting_a_step_replaces_it_whole(tmp_path: Path) -> None:
    _write(tmp_path, 3, "first")
    _write(tmp_path, 3, "second")
    assert (tmp_path / "checkpoint-3" / "weights.bin").read_text() == "second"
