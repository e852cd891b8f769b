"""Choosing the top fraction of layers per type, and freezing everything else."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch

from lathe_spectrum.scan import LayerSNR, always_trained


def top_layers(layers: list[LayerSNR], fraction: float) -> set[str]:
    """Per layer type, the ``floor(count × fraction)`` names with the highest SNR.

    Floor, as Spectrum and Axolotl count it (a type with 2 layers and fraction 0.3 keeps
    none). Ties keep the earlier layer in model order.
    """
    by_type: dict[str, list[LayerSNR]] = defaultdict(list)
    for layer in layers:
        by_type[layer.type].append(layer)
    kept = set()
    for group in by_type.values():
        ranked = sorted(group, key=lambda layer: -layer.snr)  # stable: model order breaks ties
        kept.update(layer.name for layer in ranked[: math.floor(len(group) * fraction + 1e-9)])
    return kept


@dataclass(frozen=True)
class FreezeSummary:
    trainable: int
    total: int
    trainable_names: list[str]


def freeze_all_but(model: torch.nn.Module, kept: set[str]) -> FreezeSummary:
    """Train the kept layers (weight and bias), the embeddings and the LM head; freeze the rest."""
    keep_always = always_trained(model)
    trainable = total = 0
    names = []
    for name, param in model.named_parameters():
        train = name in keep_always or any(name == k or name.startswith(k + ".") for k in kept)
        param.requires_grad_(train)
        total += param.numel()
        if train:
            trainable += param.numel()
            names.append(name)
    return FreezeSummary(trainable, total, names)
