"""Crash-safe checkpoints: each is written to a staging folder, flushed, marked complete,
then renamed into place. A process killed while saving leaves the previous checkpoints
intact, and resume only ever picks a checkpoint that carries the completion marker.

Rewriting a step that already has a checkpoint cannot be one atomic rename (a folder
cannot replace a non-empty folder), so the old copy is first moved aside to
``.replaced-<step>-<pid>`` and deleted only after the new copy is in place. A kill between
the two renames leaves both complete copies outside ``checkpoint-<step>``;
:func:`remove_stale_staging` (run before every resume) then puts the newest complete copy
back, so the last complete copy of a step is never deleted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

COMPLETE_MARKER = "lathe_checkpoint_complete.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_STAGING_PREFIX = ".staging-"
_REPLACED = re.compile(r"^\.replaced-(\d+)-\d+$")
_STAGED = re.compile(r"^\.staging-(\d+)-\d+$")


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
def staged_checkpoint(
    run_dir: Path, step: int, token: int | None = None, main: bool = True, barrier: Callable[[], None] = lambda: None
) -> Iterator[Path]:
    """Yield a staging folder; whatever is written to ``<staging>/checkpoint-<step>`` is
    moved to ``<run_dir>/checkpoint-<step>`` only once it is complete and on disk.

    Several processes (each writing its shards) share one staging folder: the same ``token``
    on every rank, ``barrier`` between the steps, and only the ``main`` one creates and
    publishes it, after every rank has written its part."""
    staging = run_dir / f"{_STAGING_PREFIX}{step}-{os.getpid() if token is None else token}"
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    barrier()
    try:
        yield staging
        barrier()  # every rank's part is written
        if not main:
            barrier()
            return
        written = staging / f"checkpoint-{step}"
        marker = written / COMPLETE_MARKER
        marker.write_text(json.dumps({"step": step, "time": time.time()}))
        _fsync_tree(written)
        final = run_dir / written.name
        replaced = None
        if final.exists():
            replaced = run_dir / f".replaced-{step}-{os.getpid()}"
            final.rename(replaced)
        written.rename(final)
        _fsync_path(run_dir)
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)
        barrier()  # published before any rank goes on
    finally:
        if main:
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


def _restore(run_dir: Path, step: int, candidates: list[Path]) -> None:
    """Put the first complete candidate back as ``checkpoint-<step>`` when that is missing or
    incomplete (a kill between moving the old copy aside and publishing the new one)."""
    final = run_dir / f"checkpoint-{step}"
    if final.is_dir() and is_complete(final):
        return
    for candidate in candidates:
        if candidate.is_dir() and is_complete(candidate):
            if final.exists():
                shutil.rmtree(final)
            candidate.rename(final)
            _fsync_path(run_dir)
            return


def remove_stale_staging(run_dir: Path) -> list[Path]:
    """Clean up after a killed save: restore a step whose complete copy was left only under a
    staging or ``.replaced`` name (newest copy first), then delete the leftovers. Returns
    what was deleted."""
    if not run_dir.is_dir():
        return []
    newer: dict[int, list[Path]] = {}  # staged copies, newer than the one they were to replace
    older: dict[int, list[Path]] = {}  # copies moved aside to be replaced
    for child in run_dir.iterdir():
        if not child.is_dir():
            continue
        if match := _STAGED.match(child.name):
            newer.setdefault(int(match.group(1)), []).append(child / f"checkpoint-{match.group(1)}")
        elif match := _REPLACED.match(child.name):
            older.setdefault(int(match.group(1)), []).append(child)
    for step in {*newer, *older}:
        _restore(run_dir, step, newer.get(step, []) + older.get(step, []))
    stale = [p for p in run_dir.iterdir() if p.is_dir() and (p.name.startswith(_STAGING_PREFIX) or _REPLACED.match(p.name))]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale
