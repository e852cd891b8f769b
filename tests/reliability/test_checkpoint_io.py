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


# Points of the rewrite protocol a SIGKILL can hit, and the copy of the step that must survive.
KILL_POINTS = {
    "while writing the new copy": "first",
    "new copy complete, nothing renamed": "first",
    "old copy moved aside, new not yet published": "second",
    "new copy published, old not yet deleted": "second",
    "while deleting the old copy": "second",
}


def _rewrite_and_die(run: Path, point: str) -> None:
    """In a forked child: rewrite step 3 and SIGKILL ourselves at ``point`` of the protocol."""
    import os
    import shutil
    import signal

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    renames = []
    real_rename, real_rmtree = Path.rename, shutil.rmtree

    def rename(self: Path, target: Path) -> Path:
        renames.append(self)
        if (point == "new copy complete, nothing renamed" and len(renames) == 1) or (
            point == "old copy moved aside, new not yet published" and len(renames) == 2
        ):
            die()
        return real_rename(self, target)

    def rmtree(path: Path, *args: object, **kwargs: object) -> None:
        if ".replaced-" in str(path):
            if point == "new copy published, old not yet deleted":
                die()
            if point == "while deleting the old copy":
                (Path(path) / "weights.bin").unlink()
                die()
        real_rmtree(path, *args, **kwargs)

    Path.rename = rename  # type: ignore[method-assign]  # this child process is killed below
    shutil.rmtree = rmtree  # type: ignore[assignment]
    with staged_checkpoint(run, 3) as staging:
        ckpt = staging / "checkpoint-3"
        ckpt.mkdir()
        (ckpt / "weights.bin").write_text("second")
        if point == "while writing the new copy":
            die()
    os._exit(0)  # not killed: the point was never reached


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_each_point_of_a_rewrite_keeps_a_complete_copy(tmp_path: Path, point: str) -> None:
    import os
    import signal

    _write(tmp_path, 3, "first")
    pid = os.fork()
    if pid == 0:
        try:
            _rewrite_and_die(tmp_path, point)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"{point}: not killed"

    remove_stale_staging(tmp_path)  # what the next start does before resuming
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-3"]
    assert latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-3"
    assert (tmp_path / "checkpoint-3" / "weights.bin").read_text() == KILL_POINTS[point]
