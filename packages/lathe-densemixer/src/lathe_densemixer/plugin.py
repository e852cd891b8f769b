"""lathe hook implementations for DenseMixer.

The hooks attached in ``lathe_post_model_build`` belong to the run whose config enabled
them; ``lathe_post_train_unload`` (which fires also after a failed run) removes them.
Runs are told apart by the identity of their config object.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from lathe.hookspecs import hookimpl
from lathe_densemixer.config import DenseMixerConfig

if TYPE_CHECKING:
    from lathe_densemixer.moe_blocks import DenseMixerHooks

_attached: dict[int, list[DenseMixerHooks]] = {}


@hookimpl
def lathe_config_model() -> type[DenseMixerConfig]:
    return DenseMixerConfig


@hookimpl
def lathe_post_model_build(cfg: Any, model: Any) -> None:
    if not cfg.dense_mixer:
        return
    from lathe_densemixer.moe_blocks import attach

    hooks = attach(model)
    _attached.setdefault(id(cfg), []).append(hooks)
    print(
        f"lathe: densemixer: dense router gradients in {len(hooks.blocks)} MoE blocks "
        f"({hooks.blocks[0]}, ...); every expert runs on every token in the backward pass",
        file=sys.stderr,
    )


@hookimpl
def lathe_post_train_unload(cfg: Any) -> None:
    for hooks in _attached.pop(id(cfg), []):
        hooks.remove()
