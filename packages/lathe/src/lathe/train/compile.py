"""``torch_compile`` (+ ``torch_compile_backend``, ``torch_compile_mode``,
``torch_compile_options``): the model is compiled by the Trainer's accelerator
(``torch.compile`` through accelerate's dynamo plugin), as in Axolotl. ``auto`` means on
where torch ≥ 2.5.1. Unlike Axolotl, compile errors are not suppressed (no silent fallback
to eager). Inductor options apply only inside the run and are restored afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lathe.config import Config

def compile_enabled(cfg: Config) -> bool:
    if cfg.torch_compile == "auto":
        import torch
        from packaging.version import Version

        return Version(torch.__version__.split("+")[0]) >= Version("2.5.1")
    return bool(cfg.torch_compile)


def training_args_compile(cfg: Config) -> dict[str, Any]:
    if not compile_enabled(cfg):
        return {}
    out: dict[str, Any] = {"torch_compile": True, "torch_compile_backend": cfg.torch_compile_backend or "inductor"}
    if cfg.torch_compile_mode:
        out["torch_compile_mode"] = cfg.torch_compile_mode
    return out


@contextlib.contextmanager
def inductor_options(cfg: Config) -> Iterator[None]:
    """``torch_compile_options`` set on ``torch._inductor.config`` for the run only."""
    if not cfg.torch_compile_options or not compile_enabled(cfg):
        yield
        return
    import torch._inductor.config as inductor_config

    with inductor_config.patch(dict(cfg.torch_compile_options)):
        yield
