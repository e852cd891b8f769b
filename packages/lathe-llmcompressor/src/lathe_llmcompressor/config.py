"""The ``llmcompressor:`` block (Axolotl's keys: ``recipe`` and ``save_compressed``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lathe.config import ConfigModel


class CompressionArgs(ConfigModel):
    recipe: dict[str, Any] | str = Field(
        description=(
            "The LLM Compressor recipe: a mapping (``<name>_stage: {<name>_modifiers: {Modifier: args}}``), "
            "or the path of a recipe YAML/JSON file. Fine-tuning supports ConstantPruningModifier."
        ),
    )
    save_compressed: bool = Field(
        False,
        description="Write the final model in the compressed-tensors sparse format (sparse-bitmask, or "
        "sparse-24-bitmask when every targeted weight is 2:4 sparse).",
    )


class LLMCompressorConfig(ConfigModel):
    llmcompressor: CompressionArgs | None = Field(
        None, description="Sparse fine-tuning with an LLM Compressor recipe (lathe-llmcompressor)."
    )
