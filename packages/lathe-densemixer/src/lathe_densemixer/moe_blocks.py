"""Finding the MoE blocks of a model and attaching the dense router gradient with module hooks.

Nothing in transformers is patched: each supported block instance gets two forward hooks
(one on its router to see its logits and top-k choice, one on the block to add the
zero-valued gradient term), and removing the handles restores the model exactly.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from lathe.errors import LatheError
from lathe_densemixer.router_grad import dense_router_term

# (module, block class, architecture) of the MoE blocks transformers ships that this supports.
SUPPORTED: list[tuple[str, str, str]] = [
    ("transformers.models.qwen2_moe.modeling_qwen2_moe", "Qwen2MoeSparseMoeBlock", "Qwen2-MoE"),
    ("transformers.models.qwen3_moe.modeling_qwen3_moe", "Qwen3MoeSparseMoeBlock", "Qwen3-MoE"),
    ("transformers.models.olmoe.modeling_olmoe", "OlmoeSparseMoeBlock", "OLMoE"),
    ("transformers.models.mixtral.modeling_mixtral", "MixtralSparseMoeBlock", "Mixtral"),
]


def supported_classes() -> dict[type, str]:
    out = {}
    for module, cls_name, arch in SUPPORTED:
        out[getattr(importlib.import_module(module), cls_name)] = arch
    return out


def normalizes_top_k(router: torch.nn.Module) -> bool:
    """Qwen and OLMoE routers have a ``norm_topk_prob`` switch; Mixtral's always normalises."""
    return bool(getattr(router, "norm_topk_prob", True))


@dataclass
class DenseMixerHooks:
    """The hooks attached to one model; :meth:`remove` takes them all off again."""

    blocks: list[str] = field(default_factory=list)
    handles: list[RemovableHandle] = field(default_factory=list)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def _attach_block(block: torch.nn.Module, hooks: DenseMixerHooks) -> None:
    seen: dict[str, Any] = {}

    def on_router(_router: torch.nn.Module, _args: Any, output: Any) -> None:
        router_logits, _scores, selected = output
        seen["logits"], seen["selected"] = router_logits, selected

    def on_block(module: torch.nn.Module, args: Any, kwargs: Any, output: torch.Tensor) -> Any:
        logits, selected = seen.pop("logits", None), seen.pop("selected", None)
        if logits is None or not torch.is_grad_enabled() or not logits.requires_grad:
            return None
        hidden = args[0] if args else kwargs["hidden_states"]
        x = hidden.reshape(-1, hidden.shape[-1])
        zero = dense_router_term(logits, selected, x, module.experts, normalizes_top_k(module.gate))
        return output + zero.view_as(output)

    hooks.handles.append(block.gate.register_forward_hook(on_router))
    hooks.handles.append(block.register_forward_hook(on_block, with_kwargs=True))


def attach(model: torch.nn.Module) -> DenseMixerHooks:
    """Hook every supported MoE block of ``model``; a model without one is an error."""
    classes = supported_classes()
    hooks = DenseMixerHooks()
    for name, module in model.named_modules():
        if type(module) in classes:
            _attach_block(module, hooks)
            hooks.blocks.append(name)
    if not hooks.blocks:
        names = ", ".join(arch for *_, arch in SUPPORTED)
        other = sorted({type(m).__name__ for m in model.modules() if hasattr(m, "experts")})
        found = f"; its expert modules ({', '.join(other)}) are not supported" if other else ""
        raise LatheError(
            f"dense_mixer: true, but {type(model).__name__} has no mixture-of-experts block "
            f"lathe-densemixer supports ({names}){found}; remove dense_mixer or the densemixer plugin"
        )
    return hooks
