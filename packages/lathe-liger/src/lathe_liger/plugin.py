"""lathe hook implementations for Liger Kernel.

The kernels (RoPE, RMSNorm, LayerNorm, GLU) are swapped in before the model is built and
swapped back in ``lathe_post_train_unload``; the losses answer ``lathe_hidden_states_loss``.
Triton needs CUDA: without it, any enabled kernel or loss is an error at model load.
"""

from __future__ import annotations

import os
from typing import Any

from lathe.errors import LatheError
from lathe.hookspecs import hookimpl
from lathe_liger.config import LigerConfig, kernel_keys

IMPL_ENV = "LIGER_KERNEL_IMPL"

# The run's patches, by id(cfg), from pre_model_load until post_train_unload undoes them.
_RUNS: dict[int, tuple[Any, str | None]] = {}


@hookimpl
def lathe_config_model() -> type[LigerConfig]:
    return LigerConfig


def _enabled(cfg: Any) -> list[str]:
    losses = [k for k in ("liger_cross_entropy", "liger_fused_linear_cross_entropy") if getattr(cfg, k)]
    return kernel_keys(cfg) + losses


@hookimpl
def lathe_pre_model_load(cfg: Any) -> None:
    import torch
    from transformers import AutoConfig

    enabled = _enabled(cfg)
    if not enabled:
        return
    if not torch.cuda.is_available():
        raise LatheError(
            f"{', '.join(enabled)}: Liger's kernels are Triton kernels and need a CUDA GPU; none is available "
            "(remove these keys to train on this machine)"
        )
    previous = os.environ.get(IMPL_ENV)
    if cfg.liger_kernel_impl:
        import sys

        if "liger_kernel.ops" in sys.modules and previous != cfg.liger_kernel_impl:
            raise LatheError(
                f"liger_kernel_impl: {cfg.liger_kernel_impl} must be chosen before liger's kernels are first imported "
                "in this process; run it in a new process"
            )
        os.environ[IMPL_ENV] = cfg.liger_kernel_impl
    from lathe_liger.patches import apply

    source = cfg.base_model_config or cfg.base_model
    model_type = AutoConfig.from_pretrained(source, trust_remote_code=cfg.trust_remote_code).model_type
    try:
        _RUNS[id(cfg)] = (apply(model_type, kernel_keys(cfg)), previous)
    except Exception:
        _restore_env(cfg, previous)
        raise


def _restore_env(cfg: Any, previous: str | None) -> None:
    if cfg.liger_kernel_impl:
        if previous is None:
            os.environ.pop(IMPL_ENV, None)
        else:
            os.environ[IMPL_ENV] = previous


@hookimpl
def lathe_hidden_states_loss(cfg: Any) -> Any:
    if cfg.liger_fused_linear_cross_entropy:
        from lathe_liger.losses import LigerFusedLinearCE

        return LigerFusedLinearCE(bool(cfg.liger_use_token_scaling))
    if cfg.liger_cross_entropy:
        from lathe_liger.losses import LigerCE

        return LigerCE()
    return None


@hookimpl
def lathe_post_train_unload(cfg: Any) -> None:
    run = _RUNS.pop(id(cfg), None)
    if run is not None:
        patches, previous = run
        patches.undo()
        _restore_env(cfg, previous)
