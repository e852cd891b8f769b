"""Fused MoE experts in transformers 5: finding them, and storing them in 4 bits (``quantize_moe_experts``).

Qwen2-MoE, Qwen3-MoE, OLMoE and Mixtral keep all experts of a layer in two ``nn.Parameter``
tensors, ``gate_up_proj`` (experts, 2·intermediate, hidden) and ``down_proj`` (experts, hidden,
intermediate). bitsandbytes' module swap only replaces ``nn.Linear``, so with ``load_in_4bit`` these
stay in 16/32 bits and hold most of the model's memory. :func:`quantize_experts` replaces each such
module by a :class:`QuantizedExperts` holding every expert's matrices in bitsandbytes' blockwise
4-bit format (NF4 or FP4, 64 weights per block, double-quantized absmax when
``bnb_4bit_use_double_quant``), dequantized one expert at a time in the forward and again in the
backward, so no dequantized expert outlives its matmul.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.config import Config

# model_type → the transformers class holding a layer's fused experts
EXPERT_CLASSES: dict[str, str] = {
    "qwen2_moe": "Qwen2MoeExperts",
    "qwen3_moe": "Qwen3MoeExperts",
    "olmoe": "OlmoeExperts",
    "mixtral": "MixtralExperts",
}
PROJECTIONS = ("gate_up_proj", "down_proj")
BLOCKSIZE = 64  # weights per absmax, bitsandbytes' default for 4-bit
NESTED_BLOCKSIZE = 256  # absmax values per second-level absmax (double quantization)


def expert_modules(model: nn.Module, key: str) -> list[tuple[str, nn.Module]]:
    """The fused experts modules of a supported MoE model, checked for the layout lathe handles."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    class_name = EXPERT_CLASSES.get(str(model_type))
    if class_name is None:
        raise LatheError(
            f"{key}: model_type {model_type!r} is not a MoE architecture lathe knows; supported: "
            f"{', '.join(sorted(EXPERT_CLASSES))}"
        )
    found = [(name, module) for name, module in model.named_modules() if type(module).__name__ == class_name]
    if not found:
        raise LatheError(f"{key}: the {model_type} model has no {class_name} modules (no sparse MoE layers?)")
    for name, module in found:
        layout = {k: getattr(module, k, None) for k in ("has_gate", "has_bias", "is_transposed", "is_concatenated")}
        if layout != {"has_gate": True, "has_bias": False, "is_transposed": False, "is_concatenated": True}:
            raise LatheError(f"{key}: {name} ({class_name}) has an expert layout lathe does not handle: {layout}")
    return found


class _DequantizedLinear(torch.autograd.Function):
    """``x @ W.T`` with ``W`` dequantized in the forward and again in the backward (never saved).

    The frozen weight needs no gradient; the input's gradient is ``grad @ W``.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight_of: Callable[[torch.dtype], torch.Tensor]) -> torch.Tensor:
        ctx.weight_of = weight_of
        return torch.nn.functional.linear(x, weight_of(x.dtype))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad @ ctx.weight_of(grad.dtype), None


class QuantizedExperts(nn.Module):
    """A layer's experts with each expert's ``gate_up_proj`` / ``down_proj`` in blockwise 4 bits.

    Buffers per projection: ``<proj>_packed`` (experts, weights/2) uint8, two weights a byte;
    ``<proj>_absmax`` (experts, blocks): float32, or uint8 codes when double-quantized, with
    ``<proj>_absmax2`` (experts, blocks/256) float32 and ``<proj>_offset`` (experts,) float32.
    The forward computes what the original module's eager forward computes with the
    dequantized weights; tokens are sorted by expert and only experts that received tokens
    are dequantized.
    """

    def __init__(self, experts: nn.Module, quant_type: str, double_quant: bool) -> None:
        import bitsandbytes.functional as bnbf

        super().__init__()
        self.num_experts = int(experts.num_experts)
        self.act_fn = experts.act_fn
        self.quant_type = quant_type
        self.double_quant = double_quant
        self.shapes: dict[str, torch.Size] = {}
        for proj in PROJECTIONS:
            weight = getattr(experts, proj).detach()
            self.shapes[proj] = weight.shape[1:]
            parts: dict[str, list[torch.Tensor]] = {"packed": [], "absmax": [], "absmax2": [], "offset": []}
            for expert in weight:  # flattened: bitsandbytes' CPU kernels mis-handle rows shorter than a block
                packed, state = bnbf.quantize_4bit(expert.reshape(-1).contiguous(), blocksize=BLOCKSIZE,
                                                   compress_statistics=double_quant, quant_type=quant_type)
                parts["packed"].append(packed.reshape(-1))
                parts["absmax"].append(state.absmax)
                if double_quant:
                    parts["absmax2"].append(state.state2.absmax)
                    parts["offset"].append(state.offset)
            for part, tensors in parts.items():
                if tensors:
                    self.register_buffer(f"{proj}_{part}", torch.stack(tensors))
        if double_quant:
            self.register_buffer("nested_code", state.state2.code, persistent=False)
        self.register_buffer("code", bnbf.get_4bit_type(quant_type, device=weight.device), persistent=False)

    def weight(self, proj: str, expert: int, dtype: torch.dtype) -> torch.Tensor:
        """One expert's dequantized matrix, shaped as in the fused parameter (``[expert]``)."""
        import bitsandbytes.functional as bnbf

        shape = self.shapes[proj]
        nested = None
        offset = None
        if self.double_quant:
            nested = bnbf.QuantState(absmax=getattr(self, f"{proj}_absmax2")[expert], code=self.nested_code,
                                     blocksize=NESTED_BLOCKSIZE, dtype=torch.float32)
            offset = getattr(self, f"{proj}_offset")[expert]
        state = bnbf.QuantState(absmax=getattr(self, f"{proj}_absmax")[expert], shape=torch.Size([shape.numel()]),
                                code=self.code, blocksize=BLOCKSIZE, quant_type=self.quant_type, dtype=dtype,
                                offset=offset, state2=nested)
        packed = getattr(self, f"{proj}_packed")[expert]
        return bnbf.dequantize_4bit(packed.reshape(-1, 1), state).reshape(shape)

    def _project(self, proj: str, expert: int, x: torch.Tensor) -> torch.Tensor:
        return _DequantizedLinear.apply(x, lambda dtype: self.weight(proj, expert, dtype))  # type: ignore[no-any-return]

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor) -> torch.Tensor:
        top_k = top_k_index.shape[-1]
        flat = top_k_index.reshape(-1)
        order = torch.argsort(flat, stable=True)
        rows = order // top_k  # the token of each (token, choice) pair, sorted by expert
        counts = torch.bincount(flat, minlength=self.num_experts).tolist()
        outputs = []
        start = 0
        for expert, count in enumerate(counts):
            if count == 0:
                continue
            x = hidden_states[rows[start:start + count]]
            gate, up = self._project("gate_up_proj", expert, x).chunk(2, dim=-1)
            outputs.append(self._project("down_proj", expert, self.act_fn(gate) * up))
            start += count
        routed = torch.cat(outputs) * top_k_weights.reshape(-1)[order, None].to(hidden_states.dtype)
        return torch.zeros_like(hidden_states).index_add(0, rows, routed.to(hidden_states.dtype))


def resident_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and persistent buffers (what stays in memory while training)."""
    persistent = dict(module.named_buffers())
    for name, sub in module.named_modules():
        for buffer in getattr(sub, "_non_persistent_buffers_set", ()):
            persistent.pop(f"{name}.{buffer}" if name else buffer, None)
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *persistent.values()))


def quantize_experts(cfg: Config, model: nn.Module) -> int:
    """Replace every fused experts module by its 4-bit form; returns the number replaced."""
    found = expert_modules(model, "quantize_moe_experts")
    before = sum(resident_bytes(m) for _, m in found)
    after = 0
    for name, experts in found:
        parent_name, _, child = name.rpartition(".")
        quantized = QuantizedExperts(experts, cfg.bnb_4bit_quant_type, cfg.bnb_4bit_use_double_quant)
        setattr(model.get_submodule(parent_name), child, quantized)
        after += resident_bytes(quantized)
    print(f"lathe: quantize_moe_experts: {len(found)} expert modules stored in 4 bits "
          f"({before / 2**20:.1f} MiB → {after / 2**20:.1f} MiB)", file=sys.stderr)
    return len(found)
