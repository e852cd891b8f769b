"""SwanLab experiment tracking for lathe (``plugins: [swanlab]``), and the profiling helpers
trainers use: ``swanlab_profile``, ``swanlab_profiling_context`` and the filtered
``swanlab_profiling_context_advanced`` with ``ProfilingConfig``."""

from lathe_swanlab.__about__ import __version__
from lathe_swanlab.profiling import (
    DEFAULT_PROFILING_CONFIG,
    ProfilingConfig,
    swanlab_profile,
    swanlab_profiling_context,
    swanlab_profiling_context_advanced,
)

__all__ = [
    "DEFAULT_PROFILING_CONFIG",
    "ProfilingConfig",
    "__version__",
    "swanlab_profile",
    "swanlab_profiling_context",
    "swanlab_profiling_context_advanced",
]
