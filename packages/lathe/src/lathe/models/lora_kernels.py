"""Fused LoRA forward/backward (``lora_mlp_kernel``, ``lora_qkv_kernel``, ``lora_o_kernel``).

peft's ``lora.Linear`` computes ``base(x) + B(A(x))·s`` as separate autograd ops, so a gated
MLP saves its input, the gate and up projections, the activation, the product fed to the down
projection and every ``A(x)``. The :class:`torch.autograd.Function` s here compute the same
values but save only the inputs of the block (``x``) and, for the MLP, the gate and up
outputs: ``A(x)``, the activation and its product with ``up`` are recomputed in backward
(cheap: rank-r matmuls and one elementwise op). Base weights are frozen (dense or
bitsandbytes 4-bit, dequantised again in backward rather than saved); the gradients of the
LoRA A and B matrices and of the input are returned.

They are applied after peft wraps the model, by giving the recognised modules an instance
``forward`` (the parameters, their names and the saved adapter are unchanged). A layout lathe
does not recognise, or an adapter the functions cannot serve (dropout, DoRA, a LoRA bias,
several adapters), is an error naming the key, never a silent fallback.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from lathe.errors import LatheError

if TYPE_CHECKING:
    from collections.abc import Callable

    from lathe.config import Config

KERNEL_KEYS = ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel")


@dataclass(frozen=True)
class Projection:
    """One linear projection: frozen base weight (dense or 4-bit), its bias, and LoRA A/B."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    lora_a: torch.Tensor | None
    lora_b: torch.Tensor | None
    scale: float

    def dense_weight(self) -> torch.Tensor:
        quant_state = getattr(self.weight, "quant_state", None)
        if quant_state is None:
            return self.weight
        if getattr(quant_state, "packing_format_for_cpu", False):  # bitsandbytes repacks in place for CPU inference
            raise LatheError("lora kernels: a 4-bit weight was repacked for CPU inference and cannot be dequantized; "
                             "set lora_mlp_kernel / lora_qkv_kernel / lora_o_kernel: false")
        import bitsandbytes.functional as bnbf

        return bnbf.dequantize_4bit(self.weight, quant_state)  # type: ignore[no-any-return]

    def tensors(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self.lora_a, self.lora_b


def _forward(x: torch.Tensor, p: Projection) -> torch.Tensor:
    out = F.linear(x, p.dense_weight().to(x.dtype), None if p.bias is None else p.bias.to(x.dtype))
    if p.lora_a is not None and p.lora_b is not None:
        out = out + F.linear(F.linear(x, p.lora_a.to(x.dtype)), p.lora_b.to(x.dtype)) * p.scale
    return out


def _backward(
    x: torch.Tensor, grad: torch.Tensor, p: Projection
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(grad of x, grad of A, grad of B) for ``out = x Wᵀ + s·(x Aᵀ) Bᵀ``; ``x Aᵀ`` is recomputed."""
    dx = grad @ p.dense_weight().to(grad.dtype)
    if p.lora_a is None or p.lora_b is None:
        return dx, None, None
    a, b = p.lora_a.to(grad.dtype), p.lora_b.to(grad.dtype)
    flat_x, flat_g = x.reshape(-1, x.shape[-1]).to(grad.dtype), grad.reshape(-1, grad.shape[-1])
    xa = flat_x @ a.t()
    gb = flat_g @ b
    grad_b = (flat_g.t() @ xa) * p.scale
    grad_a = (gb.t() @ flat_x) * p.scale
    dx = dx + (gb @ a).reshape(dx.shape) * p.scale
    return dx, grad_a.to(p.lora_a.dtype), grad_b.to(p.lora_b.dtype)


class LoraLinearFunction(torch.autograd.Function):
    """``x Wᵀ + bias + s·(x Aᵀ) Bᵀ`` saving only ``x`` (Q, K, V and O projections)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx: Any, x: torch.Tensor, lora_a: Any, lora_b: Any, p: Projection) -> torch.Tensor:  # type: ignore[override]
        ctx.projection = p
        ctx.save_for_backward(x)
        return _forward(x, p)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        dx, grad_a, grad_b = _backward(x, grad, ctx.projection)
        return dx, grad_a, grad_b, None


class LoraMLPFunction(torch.autograd.Function):
    """``down(act(gate(x)) · up(x))`` with LoRA on each projection, saving ``x``, gate and up only."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor],
        gate: Projection, up: Projection, down: Projection, *lora: Any,
    ) -> torch.Tensor:
        g, u = _forward(x, gate), _forward(x, up)
        ctx.act, ctx.projections = act, (gate, up, down)
        ctx.save_for_backward(x, g, u)
        return _forward(act(g) * u, down)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        x, g, u = ctx.saved_tensors
        gate, up, down = ctx.projections
        with torch.enable_grad():
            g_leaf = g.detach().requires_grad_()
            a = ctx.act(g_leaf)
        hidden = a.detach() * u
        d_hidden, down_a, down_b = _backward(hidden, grad, down)
        (d_g,) = torch.autograd.grad(a, g_leaf, d_hidden * u)
        d_u = d_hidden * a.detach()
        dx_gate, gate_a, gate_b = _backward(x, d_g, gate)
        dx_up, up_a, up_b = _backward(x, d_u, up)
        return dx_gate + dx_up, None, None, None, None, gate_a, gate_b, up_a, up_b, down_a, down_b


def _adapter_name(module: Any) -> str:
    active = module.active_adapters if hasattr(module, "active_adapters") else [module.active_adapter]
    return str(active[0])


def projection(module: torch.nn.Module, key: str) -> Projection:
    """The :class:`Projection` of a peft ``lora.Linear`` (or of a plain/4-bit linear without LoRA)."""
    base = module.get_base_layer() if hasattr(module, "get_base_layer") else module
    weight = base.weight
    if weight.requires_grad or (base.bias is not None and base.bias.requires_grad):
        raise LatheError(f"{key}: the base weights of {type(base).__name__} are trainable; the LoRA kernels need a frozen base")
    if getattr(weight, "quant_state", None) is None and weight.dim() != 2:
        raise LatheError(f"{key}: {type(base).__name__} is not a dense or 4-bit linear layer (8-bit bases are not supported)")
    if not hasattr(module, "lora_A") or module.disable_adapters or module.merged:
        return Projection(weight, base.bias, None, None, 1.0)
    name = _adapter_name(module)
    if name not in module.lora_A:
        return Projection(weight, base.bias, None, None, 1.0)
    return Projection(weight, base.bias, module.lora_A[name].weight, module.lora_B[name].weight, float(module.scaling[name]))


def _check_adapter(model: Any, key: str) -> None:
    """Refuse adapters the kernels do not compute: dropout, DoRA, LoRA bias, several adapters, fan_in_fan_out."""
    configs = getattr(model, "peft_config", None)
    if not configs:
        raise LatheError(f"{key} needs adapter: lora or qlora")
    if len(getattr(model, "active_adapters", [None])) != 1:
        raise LatheError(f"{key}: the LoRA kernels serve one active adapter")
    config = configs[_adapter_name(model)]
    problems = {
        "lora_dropout > 0": float(getattr(config, "lora_dropout", 0.0) or 0.0) > 0,
        "peft_use_dora (DoRA)": bool(getattr(config, "use_dora", False)),
        "a LoRA bias": getattr(config, "bias", "none") != "none" or bool(getattr(config, "lora_bias", False)),
        "lora_fan_in_fan_out": bool(getattr(config, "fan_in_fan_out", False)),
    }
    found = [name for name, bad in problems.items() if bad]
    if found:
        raise LatheError(f"{key}: the fused LoRA kernels do not support {', '.join(found)}; set {key}: false or remove it")


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The decoder layers: the longest ``ModuleList`` whose children have ``mlp`` or ``self_attn``."""
    best: list[torch.nn.Module] = []
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList):
            layers = [m for m in module if hasattr(m, "mlp") or hasattr(m, "self_attn")]
            if len(layers) == len(module) and len(layers) > len(best):
                best = layers
    return best


def _gated_mlp(mlp: Any) -> bool:
    return all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj", "act_fn"))


def _mlp_forward(mlp: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(self: Any, x: torch.Tensor) -> torch.Tensor:
        ps = [projection(getattr(self, n), "lora_mlp_kernel") for n in ("gate_proj", "up_proj", "down_proj")]
        lora = [t for p in ps for t in p.tensors()]
        return LoraMLPFunction.apply(x, self.act_fn, *ps, *lora)  # type: ignore[no-any-return]

    return types.MethodType(forward, mlp)


def _linear_forward(module: Any, key: str) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        p = projection(self, key)
        return LoraLinearFunction.apply(x, p.lora_a, p.lora_b, p)  # type: ignore[no-any-return]

    return types.MethodType(forward, module)


def _verify_mlp(mlp: Any, original: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """The fused MLP must reproduce the module's own forward: a gated MLP that computes
    something else (a scale, another gating) is an error, not a silently different model."""
    weight = projection(mlp.gate_proj, "lora_mlp_kernel").weight
    dtype = torch.float32 if getattr(weight, "quant_state", None) is not None else weight.dtype
    size = mlp.gate_proj.in_features
    x = torch.linspace(-2, 2, 3 * size, device=weight.device, dtype=dtype).reshape(1, 3, size).requires_grad_()
    with torch.enable_grad():  # bitsandbytes repacks 4-bit weights in place when a CPU forward needs no grad
        ours, theirs = mlp.forward(x).detach(), original(x).detach()
    if not torch.allclose(ours.float(), theirs.float(), atol=1e-3 * max(1.0, float(theirs.abs().max())), rtol=1e-2):
        raise LatheError(f"lora_mlp_kernel: {type(mlp).__name__} is not a gated MLP down(act(gate(x)) * up(x)); set lora_mlp_kernel: false")


def _nothing_to_fuse(key: str, names: str) -> None:
    """Axolotl enables all three kernels by default, so a key whose projections carry no LoRA
    (``lora_target_modules: [q_proj, v_proj]`` with ``lora_mlp_kernel``) is said, not refused."""
    print(f"lathe: {key}: no {names} projection carries a LoRA adapter, so there is nothing to fuse "
          "(add them to lora_target_modules to train them)", file=sys.stderr)


def apply_lora_kernels(cfg: Config, model: torch.nn.Module) -> list[str]:
    """Route the recognised LoRA projections of ``model`` through the fused functions.

    Returns the keys applied. Raises :class:`LatheError` for a model or adapter they cannot serve.
    """
    wanted = [k for k in KERNEL_KEYS if getattr(cfg, k)]
    if not wanted:
        return []
    _check_adapter(model, wanted[0])
    layers = decoder_layers(model)
    kind = type(getattr(model, "get_base_model", lambda: model)()).__name__
    if cfg.lora_mlp_kernel:
        mlps = [layer.mlp for layer in layers if _gated_mlp(getattr(layer, "mlp", None))]
        if not mlps or len(mlps) != len(layers):
            raise LatheError(f"lora_mlp_kernel: {kind} has no gated MLP (gate_proj, up_proj, down_proj, act_fn) in every "
                             "decoder layer; set lora_mlp_kernel: false")
        if not any(hasattr(getattr(m, n), "lora_A") for m in mlps for n in ("gate_proj", "up_proj", "down_proj")):
            _nothing_to_fuse("lora_mlp_kernel", "gate_proj/up_proj/down_proj")
            mlps = []
        for mlp in mlps:
            original = mlp.forward
            mlp.forward = _mlp_forward(mlp)
            if mlp is mlps[0]:
                _verify_mlp(mlp, original)
    for key, names in (("lora_qkv_kernel", ("q_proj", "k_proj", "v_proj")), ("lora_o_kernel", ("o_proj",))):
        if not getattr(cfg, key):
            continue
        attns = [getattr(layer, "self_attn", None) for layer in layers]
        if not attns or any(a is None or not all(hasattr(a, n) for n in names) for a in attns):
            raise LatheError(f"{key}: {kind}'s attention has no {'/'.join(names)} projections in every decoder layer; set {key}: false")
        targets = [getattr(a, n) for a in attns for n in names if hasattr(getattr(a, n), "lora_A")]
        if not targets:
            _nothing_to_fuse(key, "/".join(names))
        for module in targets:
            projection(module, key)
            module.forward = _linear_forward(module, key)
    return wanted
