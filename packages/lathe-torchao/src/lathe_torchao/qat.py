"""Quantization-aware training: fake-quantize from a given step, convert back at the end."""

from __future__ import annotations

import sys
from typing import Any

import torch
from transformers import TrainerCallback

from lathe_torchao.config import QATBlock
from lathe_torchao.schemes import embedding_config, is_embedding, linear_config


def prepare(model: torch.nn.Module, block: QATBlock) -> int:
    """Swap linear layers (and embeddings when asked) for torchao's fake-quantized ones; returns
    how many modules were swapped."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    quantize_(model, QATConfig(linear_config(block), step="prepare"))
    if block.quantize_embedding:
        quantize_(model, QATConfig(embedding_config(block), step="prepare"), filter_fn=is_embedding)
    return len(fake_quantizers(model))


def convert(model: torch.nn.Module) -> None:
    """Swap the fake-quantized modules back to ``nn.Linear`` / ``nn.Embedding`` (weights unchanged),
    so the output is an ordinary model that ``lathe quantize`` then quantizes."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    quantize_(model, QATConfig(step="convert"))
    quantize_(model, QATConfig(step="convert"), filter_fn=is_embedding)


def fake_quantizers(model: torch.nn.Module) -> list[Any]:
    """Every activation and weight fake quantizer in the model."""
    found = []
    for module in model.modules():
        for attr in ("activation_fake_quantizer", "weight_fake_quantizer"):
            quantizer = getattr(module, attr, None)
            if quantizer is not None and hasattr(quantizer, "enabled"):
                found.append(quantizer)
    return found


def set_fake_quant(model: torch.nn.Module, enabled: bool) -> None:
    for quantizer in fake_quantizers(model):
        quantizer.enabled = enabled


class QATCallback(TrainerCallback):
    """Fake quantization is on exactly for the optimizer steps after ``fake_quant_after_n_steps``
    (``global_step >= n`` when the step begins; none: from the first step), and the model is
    converted back to plain modules when training ends, before it is saved.

    Whether it is on is a function of the step alone, which a resumed run restores, so this
    callback has no state of its own to checkpoint."""

    def __init__(self, block: QATBlock):
        self.start = block.fake_quant_after_n_steps or 0
        self.enabled: bool | None = None

    def on_step_begin(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        enable = state.global_step >= self.start
        if model is None or enable is self.enabled:
            return
        set_fake_quant(model, enable)
        if self.start:
            print(f"lathe: torchao: fake quantization {'on' if enable else 'off'} from step "
                  f"{state.global_step + 1}", file=sys.stderr)
        self.enabled = enable

    def on_train_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        if model is not None:
            convert(model)
