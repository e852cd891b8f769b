"""The keys lathe-cut-cross-entropy adds to the config (Axolotl's ``cut_cross_entropy`` and one of lathe's)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lathe.config import ConfigModel


class CutCrossEntropyConfig(ConfigModel):
    cut_cross_entropy: bool = Field(
        True,
        description="Compute the loss with Cut Cross Entropy from the hidden states, never building the logits.",
    )
    cut_cross_entropy_impl: Literal["auto", "cce", "torch_compile"] = Field(
        "auto",
        description=(
            "auto: the Triton kernel (cce) on a CUDA GPU, torch_compile elsewhere. cce needs CUDA and "
            "bf16/fp16; torch_compile runs anywhere and gives the same loss."
        ),
    )
