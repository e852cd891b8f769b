"""The keys lathe-liger adds to the config: every key of Axolotl's Liger integration, with its meaning."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lathe.config import ConfigModel


class LigerConfig(ConfigModel):
    liger_rope: bool | None = Field(None, description="Liger's fused RoPE kernel.")
    liger_rms_norm: bool | None = Field(None, description="Liger's RMSNorm kernel.")
    liger_rms_norm_gated: bool | None = Field(
        None, description="Fused gated RMSNorm (Qwen3.5 linear attention). Refused: liger-kernel 0.8 has no such kernel."
    )
    liger_layer_norm: bool | None = Field(None, description="Liger's LayerNorm kernel.")
    liger_glu_activation: bool | None = Field(None, description="Liger's SwiGLU/GeGLU MLP kernel.")
    liger_swiglu: bool | None = Field(None, description="Deprecated name of liger_glu_activation (warns, then used as it).")
    liger_cross_entropy: bool | None = Field(None, description="Liger's cross-entropy kernel on the materialised logits.")
    liger_fused_linear_cross_entropy: bool | None = Field(
        None, description="Liger's fused linear cross-entropy: the loss from hidden states, logits never materialised."
    )
    liger_use_token_scaling: bool | None = Field(
        None,
        description="In the fused linear cross-entropy, multiply each token's loss by its predicted probability "
        "(detached). Needs liger_fused_linear_cross_entropy.",
    )
    liger_kernel_impl: Literal["cutile", "cutedsl"] | None = Field(
        None,
        description="Alternative liger kernel backend (LIGER_KERNEL_IMPL): cutile needs cuda-tile, cutedsl "
        "nvidia-cutlass-dsl. The fused linear cross-entropy stays Triton. Unset keeps liger's default kernels.",
    )

    @model_validator(mode="before")
    @classmethod
    def _deprecated_swiglu(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("liger_swiglu") is not None:
            if data.get("liger_glu_activation") is not None:
                raise ValueError("liger_swiglu and liger_glu_activation are both set; keep liger_glu_activation")
            import sys

            print("lathe: liger_swiglu is deprecated; use liger_glu_activation", file=sys.stderr)
            data = {**data, "liger_glu_activation": data["liger_swiglu"], "liger_swiglu": None}
        return data

    @model_validator(mode="after")
    def _rules(self) -> LigerConfig:
        if self.liger_use_token_scaling and not self.liger_fused_linear_cross_entropy:
            raise ValueError("liger_use_token_scaling: true needs liger_fused_linear_cross_entropy: true")
        if self.liger_cross_entropy and self.liger_fused_linear_cross_entropy:
            raise ValueError(
                "liger_cross_entropy and liger_fused_linear_cross_entropy are both set; they compute the same "
                "loss two ways, enable only one"
            )
        if self.liger_rms_norm_gated:
            raise ValueError(
                "liger_rms_norm_gated: liger-kernel 0.8 has no gated RMSNorm kernel (Axolotl ships its own); "
                "it is not available in lathe-liger"
            )
        return self



KERNEL_KEYS = ("liger_rope", "liger_rms_norm", "liger_layer_norm", "liger_glu_activation")


def kernel_keys(cfg: Any) -> list[str]:
    """The enabled keys that swap model code for Triton kernels (the loss keys are separate)."""
    return [n for n in KERNEL_KEYS if getattr(cfg, n)]
