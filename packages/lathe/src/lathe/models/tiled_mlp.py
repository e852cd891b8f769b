"""ALST TiledMLP (``tiled_mlp``): each decoder MLP runs over sequence shards, recomputed in backward.

An MLP's intermediate activations are ``tokens × intermediate_size``, several times the hidden
states, and at long context they dominate memory. :class:`TiledMLPFunction` runs the MLP shard
by shard under ``no_grad`` (nothing is saved but the input) and, in backward, recomputes one
shard at a time with grad enabled and differentiates it right away, so at most one shard's
intermediates exist at any moment. The MLP is per-token, so the result and the gradients equal
the untiled MLP's (packed rows included); only the order of the floating-point sums over
shards differs.
"""

from __future__ import annotations

import math
import types
from typing import TYPE_CHECKING, Any

import torch

from lathe.errors import LatheError
from lathe.models.lora_kernels import decoder_layers

if TYPE_CHECKING:
    from collections.abc import Callable

    from lathe.config import Config

TOKENS_PER_SHARD = 32768  # Axolotl's default when tiled_mlp_num_shards is unset


class TiledMLPFunction(torch.autograd.Function):
    """``fn(x)`` computed over ``shards`` slices of the sequence dimension (−2)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, fn: Callable[[torch.Tensor], torch.Tensor], shards: int, x: torch.Tensor, *params: torch.Tensor
    ) -> torch.Tensor:
        ctx.fn, ctx.shards = fn, shards
        device = x.device.type
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.save_for_backward(x, *params)
        with torch.no_grad():
            outs = [fn(piece) for piece in torch.tensor_split(x, shards, dim=-2)]
        if not all(isinstance(o, torch.Tensor) for o in outs):
            raise LatheError("tiled_mlp: the MLP does not return one tensor; set tiled_mlp: false for this model")
        return torch.cat(outs, dim=-2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        x, *params = ctx.saved_tensors
        wanted = [p for p, need in zip(params, ctx.needs_input_grad[3:], strict=True) if need]
        sums: list[torch.Tensor | None] = [None] * len(wanted)
        dx = torch.zeros_like(x) if ctx.needs_input_grad[2] else None
        for index in torch.tensor_split(torch.arange(x.shape[-2]), ctx.shards):
            if len(index) == 0:
                continue
            start, stop = int(index[0]), int(index[-1]) + 1
            piece = x[..., start:stop, :].detach().requires_grad_(dx is not None)
            device, enabled, dtype = ctx.autocast  # recompute as forward ran: same autocast state
            with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
                out = ctx.fn(piece)
            targets = ([piece] if dx is not None else []) + wanted
            found = list(torch.autograd.grad(out, targets, grad[..., start:stop, :], allow_unused=True))
            if dx is not None:
                dx[..., start:stop, :] = found.pop(0)
            sums = [g if s is None else s if g is None else s + g for s, g in zip(sums, found, strict=True)]
        grads = iter(sums)
        return (None, None, dx, *(next(grads) if need else None for need in ctx.needs_input_grad[3:]))


def shard_count(cfg: Config, length: int) -> int:
    if cfg.tiled_mlp_num_shards:
        return min(cfg.tiled_mlp_num_shards, max(length, 1))
    return max(1, math.ceil(length / TOKENS_PER_SHARD))


def generic_gated_mlp(mlp: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The llama-style MLP ``down(act(gate(x)) * up(x))`` of ``mlp`` (``tiled_mlp_use_original_mlp: false``)."""
    if not all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj", "act_fn")):
        raise LatheError(f"tiled_mlp_use_original_mlp: false needs a gated MLP (gate_proj, up_proj, down_proj, act_fn); "
                         f"{type(mlp).__name__} is not one: set it to true")

    def forward(x: torch.Tensor) -> torch.Tensor:
        return mlp.down_proj(mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x))  # type: ignore[no-any-return]

    return forward


def tiled_forward(cfg: Config, mlp: torch.nn.Module, inner: Callable[[torch.Tensor], torch.Tensor]) -> Callable[..., Any]:
    def forward(self: Any, x: torch.Tensor) -> torch.Tensor:
        shards = shard_count(cfg, x.shape[-2])
        if not torch.is_grad_enabled():  # evaluation: shard too, nothing to recompute
            return torch.cat([inner(p) for p in torch.tensor_split(x, shards, dim=-2)], dim=-2)
        params = [p for p in self.parameters() if p.requires_grad]
        return TiledMLPFunction.apply(inner, shards, x, *params)  # type: ignore[no-any-return]

    return types.MethodType(forward, mlp)


def apply_tiled_mlp(cfg: Config, model: torch.nn.Module) -> int:
    """Give every decoder layer's MLP the tiled forward; returns how many were tiled."""
    if not cfg.tiled_mlp:
        return 0
    layers = [layer for layer in decoder_layers(model) if isinstance(getattr(layer, "mlp", None), torch.nn.Module)]
    if not layers:
        kind = type(getattr(model, "get_base_model", lambda: model)()).__name__
        raise LatheError(f"tiled_mlp: {kind} has no decoder layers with an mlp module lathe recognises; set tiled_mlp: false")
    for layer in layers:
        mlp = layer.mlp
        inner = mlp.forward if cfg.tiled_mlp_use_original_mlp is not False else generic_gated_mlp(mlp)
        mlp.forward = tiled_forward(cfg, mlp, inner)
    return len(layers)
