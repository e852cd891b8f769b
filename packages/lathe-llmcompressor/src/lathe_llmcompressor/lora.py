"""LoRA on a sparse model: the update of a targeted weight is masked like the weight.

A LoRA update ``B @ A`` is dense, so merging it would fill every pruned weight. Each
peft LoRA layer whose base weight a recipe targets computes instead

    y = base(x) + dropout(x) @ (scaling * (B @ A) ⊙ mask)ᵀ

with ``mask = base weight != 0`` (the base is frozen, so the mask never changes), and its
``get_delta_weight``, which peft's merge and unmerge use, returns the same masked update.
Training, inference and the merged model therefore compute the same function, and the
merged weights keep the base's zeros exactly. The patch is on the layer instances of the
model being trained or loaded, never on peft's classes; it costs one weight-sized
temporary per targeted layer in each forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lathe_llmcompressor.targets import is_match, plain_name

if TYPE_CHECKING:
    import torch

MASK = "lathe_sparsity_mask"


def mask_lora_updates(model: torch.nn.Module, targets: list[str]) -> int:
    """Mask the LoRA update of every targeted weight of ``model``; returns how many layers."""
    from peft.tuners.lora import Linear as LoraLinear

    count = 0
    for raw, module in model.named_modules():
        if not isinstance(module, LoraLinear) or hasattr(module, MASK):
            continue
        base = module.get_base_layer()
        if any(is_match(t, plain_name(raw), base) for t in targets):
            _mask_layer(module, base.weight != 0)
            count += 1
    return count


def _mask_layer(layer: Any, mask: torch.Tensor) -> None:
    import torch.nn.functional as F

    layer.register_buffer(MASK, mask, persistent=False)  # follows the layer to its device
    class_forward = type(layer).forward
    unmasked_delta = layer.get_delta_weight

    def get_delta_weight(adapter: str) -> torch.Tensor:
        delta = unmasked_delta(adapter)
        return delta * getattr(layer, MASK).to(delta.dtype)

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if layer.disable_adapters or layer.merged or kwargs.get("adapter_names") is not None:
            return class_forward(layer, x, *args, **kwargs)
        result = layer.base_layer(x, *args, **kwargs)
        for adapter in layer.active_adapters:
            if adapter not in layer.lora_A:
                continue
            dx = layer._cast_input_dtype(layer.lora_dropout[adapter](x), layer.lora_A[adapter].weight.dtype)
            delta = get_delta_weight(adapter)
            if layer.fan_in_fan_out:
                delta = delta.T
            result = result + F.linear(dx, delta).to(result.dtype)
        return result

    layer.get_delta_weight = get_delta_weight
    layer.forward = forward
