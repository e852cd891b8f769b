"""Which weights a recipe's ``targets`` name, matched as LLM Compressor matches them.

A target is a module name (``model.layers.0.mlp.down_proj``), a module class name
(``Linear``), or ``re:<regex>`` matched from the start of the module name *or* of its
weight's name (the seed's ``re:.*q_proj.weight`` names weights). Names are read as in
the plain model: peft's ``base_model.model.`` prefix and ``.base_layer`` are dropped,
so a recipe written for the base model targets the same weights under LoRA.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_PEFT_PREFIX = "base_model.model."


def plain_name(name: str) -> str:
    """The module's name in the model without an adapter."""
    name = name.removeprefix(_PEFT_PREFIX)
    return name.replace(".base_layer", "")


def is_match(target: str, name: str, module: torch.nn.Module) -> bool:
    if target.startswith("re:"):
        pattern = target[3:]
        return bool(re.match(pattern, name) or re.match(pattern, f"{name}.weight"))
    classes = {cls.__name__ for cls in type(module).__mro__}
    return target in (name, f"{name}.weight") or target in classes


def targeted_modules(model: torch.nn.Module, targets: Iterable[str]) -> dict[str, torch.nn.Module]:
    """``{plain module name: module}`` for every module with a 2-D ``weight`` a target names.

    peft's own LoRA sub-layers (``lora_A``, ``lora_B``, embeddings) are never targets: they
    are dense by design; the sparsity of the weight they adapt is kept by :mod:`lora`.
    """
    import torch

    targets = list(targets)
    found: dict[str, torch.nn.Module] = {}
    for raw, module in model.named_modules():
        if ".lora_" in f".{raw}" or raw.endswith("modules_to_save") or ".modules_to_save." in raw:
            continue
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.nn.Parameter) or weight.dim() != 2:
            continue
        if hasattr(module, "base_layer"):  # the peft wrapper: its base_layer is matched instead
            continue
        name = plain_name(raw)
        if any(is_match(t, name, module) for t in targets):
            found[name] = module
    return found


def unmatched(model: torch.nn.Module, targets: Iterable[str]) -> list[str]:
    """The targets that name no weight of ``model`` (a typo in a regex is easy to make)."""
    return [t for t in targets if not targeted_modules(model, [t])]
