"""Timing trainer methods into SwanLab: ``profiling/Time taken: Class.method`` (seconds).

Nothing is logged unless the trainer's run has SwanLab on (``trainer.lathe_cfg``) and a
SwanLab run is active in this process; the timing itself is two ``perf_counter`` calls.
The duration is logged also when the timed code raises, and the exception propagates.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lathe_swanlab.config import enabled

F = TypeVar("F", bound=Callable[..., Any])


def metric_name(owner: Any, name: str) -> str:
    return f"profiling/Time taken: {type(owner).__name__}.{name}"


def _log(owner: Any, name: str, seconds: float) -> None:
    swanlab = sys.modules.get("swanlab")  # not imported yet: no run can be active
    if swanlab is None or not enabled(getattr(owner, "lathe_cfg", None)):
        return
    try:
        if swanlab.has_run():
            swanlab.log({metric_name(owner, name): seconds})
    except Exception as exc:  # profiling never breaks training
        print(f"lathe: swanlab: profiling metric for {name} not logged: {exc}", file=sys.stderr)


@contextmanager
def swanlab_profiling_context(trainer: Any, func_name: str) -> Iterator[None]:
    """Time the block and log it under ``profiling/Time taken: <TrainerClass>.<func_name>``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _log(trainer, func_name, time.perf_counter() - start)


def swanlab_profile(func: F) -> F:
    """Decorate a trainer method to time every call (``self`` names the class in the metric)."""

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with swanlab_profiling_context(self, func.__name__):
            return func(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass
class ProfilingConfig:
    """Which timings to log: none when disabled, none under ``min_duration_ms``, and of the
    calls that pass, the first and then every ``log_interval``-th (per name)."""

    enabled: bool = True
    min_duration_ms: float = 0.1
    log_interval: int = 1
    _counts: dict[str, int] = field(default_factory=dict, repr=False)

    def should_log(self, func_name: str, seconds: float) -> bool:
        if not self.enabled or seconds * 1000 < self.min_duration_ms:
            return False
        count = self._counts.get(func_name, 0) + 1
        self._counts[func_name] = count
        return count == 1 or count % max(1, self.log_interval) == 0


# The seed's documented switch: ``DEFAULT_PROFILING_CONFIG.enabled = False`` turns off the
# advanced context everywhere it is used without an explicit config.
DEFAULT_PROFILING_CONFIG = ProfilingConfig()


@contextmanager
def swanlab_profiling_context_advanced(
    trainer: Any, func_name: str, config: ProfilingConfig | None = None
) -> Iterator[None]:
    """Like :func:`swanlab_profiling_context`, filtered and throttled by ``config``."""
    config = DEFAULT_PROFILING_CONFIG if config is None else config
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        if config.should_log(func_name, seconds):
            _log(trainer, func_name, seconds)
