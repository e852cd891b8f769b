"""The torchao configs one ``qat:`` / ``quantization:`` block stands for.

A block names one post-training layout (see ``config.SCHEMES``). QAT prepares the model with
torchao's ``QATConfig(base_config)``, which derives the fake quantizers from that same PTQ
config, so the fake-quantized numerics of training are the numerics ``lathe quantize`` writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torchao.core.config import AOBaseConfig

    from lathe_torchao.config import PTQBlock, QATBlock

CUDA_ONLY = {("int4", None), ("int4", "float8_e4m3fn"), ("float8_e4m3fn", "float8_e4m3fn")}


def linear_config(block: QATBlock | PTQBlock) -> AOBaseConfig:
    """The torchao PTQ config of the linear layers."""
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Float8DynamicActivationInt4WeightConfig,
        Int4WeightOnlyConfig,
        Int8DynamicActivationIntxWeightConfig,
    )
    from torchao.quantization.granularity import PerGroup

    pair = (block.weight_dtype, block.activation_dtype)
    if pair == ("int4", "int8"):
        return Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                     weight_granularity=PerGroup(block.group_size or 32))
    if pair == ("int4", None):
        return Int4WeightOnlyConfig(group_size=block.group_size or 128)
    if pair == ("int4", "float8_e4m3fn"):
        return Float8DynamicActivationInt4WeightConfig()
    if pair == ("float8_e4m3fn", "float8_e4m3fn"):
        return Float8DynamicActivationFloat8WeightConfig()
    raise AssertionError(f"unvalidated layout {pair}")  # config.py refuses every other pair


def embedding_config(block: QATBlock | PTQBlock) -> AOBaseConfig:
    """Embeddings take weight-only int4 (activations of a lookup are not quantized)."""
    from torchao.quantization import IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    return IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(block.group_size or 32))


def is_embedding(module: torch.nn.Module, _fqn: str) -> bool:
    return isinstance(module, torch.nn.Embedding)


def needs_cuda(block: QATBlock | PTQBlock) -> bool:
    """torchao has CPU kernels only for int8-activation / int4-weight; the others run on CUDA."""
    return (block.weight_dtype, block.activation_dtype) in CUDA_ONLY
