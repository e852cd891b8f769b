"""lathe hook implementations for DenseMixer.

The hooks attached in ``lathe_post_model_build`` belong to the run whose config enabled
them; ``lathe_post_train_unload`` (which fires also after a failed run) removes them.
Runs are told apart by the identity of their config object.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lathe.hookspecs import hookimpl
from lathe_densemixer.config import DenseMixerConfig

if TYPE_CHECKING:
    from lathe_densemixer.moe_blocks import DenseMixerHooks

log = logging.getLogger(__name__)

_attached: dict[int, DenseMixerHooks] = {}


@hookimpl
def lathe_config_model() -> type[DenseMixerConfig]:
    return DenseMixerConfig


@hookimpl
def lathe_post_model_build(cfg: Any, model: Any) -> None:
    if not cfg.dense_mixer:
        return
    from lathe_densemixer.moe_blocks import attach

    hooks = attach(model)
    _attached[id(cfg)] = hooks
    log.info(
        "densemixer: dense router gradients in %d MoE blocks (%s ...); every expert runs on "
        "every token in the backward pass",
        len(hooks.blocks), hooks.blocks[0],
    )


@hookimpl
def lathe_post_train_unload(cfg: Any) -> None:
    hooks = _attached.pop(id(cfg), None)
    if hooks is not None:
        hooks.remove()
