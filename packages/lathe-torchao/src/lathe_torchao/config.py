"""The keys lathe-torchao adds: Axolotl's ``qat:``, ``quantization:``, ``fp8``, ``fp8_config`` and
``fp8_enable_fsdp_float8_all_gather``, with Axolotl's nesting and defaults (its 0.19 schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lathe.config import ConfigModel

QuantDType = Literal["int4", "int8", "float8_e4m3fn", "nvfp4", "mxfp4", "ternary"]
_ALIASES = {"fp8": "float8_e4m3fn", "float8": "float8_e4m3fn"}

# (weight_dtype, activation_dtype) → what torchao does with it; the only layouts lathe builds.
SCHEMES: dict[tuple[str, str | None], str] = {
    ("int4", None): "int4 weight-only (CUDA kernels)",
    ("int4", "int8"): "int8 dynamic activations, int4 weights (runs on CPU)",
    ("int4", "float8_e4m3fn"): "float8 dynamic activations, int4 weights (CUDA, sm89+)",
    ("float8_e4m3fn", "float8_e4m3fn"): "float8 dynamic activations and weights (CUDA, sm89+)",
}


class _Scheme(ConfigModel):
    """The quantization layout shared by ``qat:`` and ``quantization:``."""

    weight_dtype: QuantDType = Field("int8", description="Weight dtype: int4 or float8_e4m3fn (fp8).")
    activation_dtype: QuantDType | None = Field(
        None, description="Activation dtype (dynamic, per token): none, int8 or float8_e4m3fn (fp8)."
    )
    group_size: int | None = Field(32, gt=0, description="Elements per quantization group of int4 weights.")

    @field_validator("weight_dtype", "activation_dtype", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return _ALIASES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _supported(self) -> _Scheme:
        pair = (self.weight_dtype, self.activation_dtype)
        if self.weight_dtype in ("nvfp4", "mxfp4", "ternary"):
            raise ValueError(f"weight_dtype: {self.weight_dtype} is not available in lathe yet; "
                             f"use {_choices()}")
        if pair not in SCHEMES:
            raise ValueError(f"weight_dtype: {self.weight_dtype} with activation_dtype: {self.activation_dtype} "
                             f"is not a layout torchao can train and convert; use {_choices()}")
        if self.weight_dtype != "int4" and "group_size" in self.model_fields_set and self.group_size is not None:
            raise ValueError(f"group_size applies to int4 weights only (weight_dtype is {self.weight_dtype})")
        if getattr(self, "quantize_embedding", None) and self.weight_dtype != "int4":
            raise ValueError("quantize_embedding needs weight_dtype: int4 (embeddings are quantized weight-only)")
        return self


def _choices() -> str:
    return "; ".join(f"weight_dtype {w}" + (f" + activation_dtype {a}" if a else "") for w, a in SCHEMES)


class QATBlock(_Scheme):
    quantize_embedding: bool | None = Field(False, description="Fake-quantize the input embeddings too (int4 weights).")
    fake_quant_after_n_steps: int | None = Field(
        None, ge=0, description="Train without fake quantization until this optimizer step; none: from the start."
    )


class PTQBlock(_Scheme):
    quantize_embedding: bool | None = Field(None, description="Quantize the input embeddings too (int4 weights).")


class FP8Block(ConfigModel):
    recipe: Literal["tensorwise", "rowwise", "rowwise_with_gw_hp"] = Field(
        "tensorwise", description="torchao float8 scaling recipe."
    )


class TorchaoConfig(ConfigModel):
    qat: QATBlock | None = Field(
        None, description="Quantization-aware training: fake-quantize linear layers while training (torchao)."
    )
    quantization: PTQBlock | None = Field(
        None, description="Post-training quantization written by `lathe quantize` (torchao)."
    )
    fp8: bool | None = Field(None, description="Train the linear layers in float8 (torchao float8 training).")
    fp8_config: FP8Block | None = Field(None, description="Options of fp8 training (requires fp8: true).")
    fp8_enable_fsdp_float8_all_gather: bool | None = Field(
        None, description="All-gather FSDP2 shards in float8 (requires fp8: true and fsdp_version: 2)."
    )

    @model_validator(mode="after")
    def _fp8_options(self) -> TorchaoConfig:
        if self.fp8_config is not None and not self.fp8:
            raise ValueError("fp8_config requires fp8: true; set fp8: true or remove fp8_config")
        if self.fp8_enable_fsdp_float8_all_gather:
            if not self.fp8:
                raise ValueError("fp8_enable_fsdp_float8_all_gather requires fp8: true")
            if self.fp8_config is not None and self.fp8_config.recipe != "tensorwise":
                raise ValueError("fp8_enable_fsdp_float8_all_gather only works with fp8_config.recipe: tensorwise")
        if self.qat is not None and self.fp8:
            raise ValueError("qat and fp8 cannot be combined: both replace the linear layers")
        return self
