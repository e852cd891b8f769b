"""Crash-safe checkpoints: each is written to a staging folder, flushed, marked complete,
then renamed into place. A process killed while saving leaves the previous checkpoints
intact, and resume only ever picks a checkpoint that carries the completion marker."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

COMPLETE_MARKER = "lathe_checkpoint_complete.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_STAGING_PREFIX = ".staging-"


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        _fsync_path(path)
    _fsync_path(root)


@contextmanager
def staged_checkpoint(run_dir: Path, step: int) -> Iterator[Path]:
    """Yield a staging folder; whatever is written to ``<staging>/checkpoint-<step>`` is
    moved to ``<run_dir>/checkpoint-<step>`` only once it is complete and on disk."""
    run_dir.mkdir(parents=True, exist_ok=True)
    staging = run_dir / f"{_STAGING_PREFIX}{step}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        written = staging / f"checkpoint-{step}"
        marker = written / COMPLETE_MARKER
        marker.write_text(json.dumps({"step": step, "time": time.time()}))
        _fsync_tree(written)
        final = run_dir / written.name
        replaced = None
        if final.exists():
            replaced = run_dir / f"{_STAGING_PREFIX}old-{step}-{os.getpid()}"
            final.rename(replaced)
        written.rename(final)
        _fsync_path(run_dir)
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def is_complete(checkpoint: Path) -> bool:
    return (checkpoint / COMPLETE_MARKER).is_file()


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints in ``run_dir``, oldest step first."""
    if not run_dir.is_dir():
        return []
    found = []
    for child in run_dir.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir() and is_complete(child):
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def latest_complete_checkpoint(run_dir: Path) -> Path | None:
    done = complete_checkpoints(run_dir)
    return done[-1] if done else None


def remove_stale_staging(run_dir: Path) -> list[Path]:
    """Delete staging folders a killed save left behind; returns what was removed."""
    if not run_dir.is_dir():
        return []
    stale = [p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith(_STAGING_PREFIX)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale
