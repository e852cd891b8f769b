"""Which process this is, and the rank-0 discipline: rank 0 prepares data while the others wait
at a barrier (then read the cache), and only rank 0 prints, shows progress and writes files."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lathe.config import Config

DEFAULT_TIMEOUT = 1800  # seconds, transformers' ddp_timeout default


def world_size() -> int:
    """Processes in this run, as the launcher set them (1 when not launched)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process writes outputs and talks to the user."""
    return rank() == 0


def start(cfg: Config) -> None:
    """In a launched process: join the process group (with ``ddp_timeout``, so a dead rank is
    an error, never a hang) and silence everything but errors on ranks other than 0. The config
    is checked against the world size first (N-D sizes, engines this machine cannot run)."""
    from lathe.distributed.engine import check_world

    check_world(cfg, world_size())
    if world_size() == 1:
        return
    import torch
    from accelerate import PartialState

    timeout = timedelta(seconds=cfg.ddp_timeout or DEFAULT_TIMEOUT)
    if cfg.deepspeed:  # DeepSpeed sets up its own process group (and accelerate's state for it)
        from lathe.train.deepspeed import deepspeed_process_setup

        deepspeed_process_setup(timeout)
    else:  # without cpu=True accelerate treats a CPU-only machine as not distributed at all
        PartialState(cpu=not torch.cuda.is_available(), timeout=timeout)
    if not is_main():
        quiet_replica()


def quiet_replica() -> None:
    """Ranks > 0: no progress bars, no info logs, no warnings (rank 0 shows them once)."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    logging.getLogger("lathe").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the body first (preparing the data cache); the others wait at a barrier,
    then run it (and find the cache). A failing rank 0 never reaches the barrier: the launcher
    stops the others when it exits (and the process group's timeout bounds the wait)."""
    if world_size() == 1:
        yield
        return

    if not is_main():
        _wait_for_rank_0()
    yield
    if is_main():
        _wait_for_rank_0()


def _wait_for_rank_0() -> None:
    """The barrier of :func:`main_first`; a rank 0 that died is a clear error here."""
    import torch.distributed as dist

    from lathe.errors import LatheError

    try:
        dist.barrier()
    except (RuntimeError, dist.DistError) as exc:
        reason = str(exc).split("] ")[-1].split(". ")[0]
        raise LatheError(f"another rank failed while rank 0 prepared the data ({reason})") from None


def _distributed() -> bool:
    import torch.distributed as dist

    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait for every rank (nothing when the run has one process)."""
    if _distributed():
        import torch.distributed as dist

        dist.barrier()


def finish() -> None:
    """After a launched command succeeded: wait for every rank, then leave the process group.
    A rank that exits while a peer's gloo connections are still live can abort after everything
    was saved ("terminate called without an active exception"), and the launcher then reports
    a finished run as failed. Only on success: a failing rank must exit, not wait here."""
    if _distributed():
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


def shared_token() -> int:
    """A number every rank agrees on (rank 0's pid): names a folder all ranks write into."""
    if not _distributed():
        return os.getpid()
    import torch.distributed as dist

    box = [os.getpid()]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])


def say(message: str) -> None:
    """A ``lathe: ...`` line on stderr, from rank 0 only."""
    if is_main():
        import sys

        print(f"lathe: {message}", file=sys.stderr)
