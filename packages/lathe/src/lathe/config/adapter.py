"""LoRA / QLoRA adapter keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lathe.config.base import ConfigModel


class AdapterSection(ConfigModel):
    adapter: Literal["lora", "qlora"] | None = None
    lora_model_dir: str | None = Field(None, description="Continue training this saved adapter.")
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(16, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: list[str] | str | None = None
    lora_target_linear: bool = Field(False, description="Target every linear layer except lm_head.")
    lora_modules_to_save: list[str] | None = None
    lora_fan_in_fan_out: bool | None = False
    peft_use_dora: bool = False
    peft_use_rslora: bool = False
    peft_layers_to_transform: list[int] | None = None
    lora_target_parameters: list[str] | str | None = Field(None, description="Parameter names (e.g. fused MoE experts) to put LoRA on (PEFT target_parameters).")
    lora_rank_pattern: dict[str, int] | None = Field(None, description="Per-module rank overrides (PEFT rank_pattern).")
    lora_alpha_pattern: dict[str, float] | None = Field(None, description="Per-module alpha overrides (PEFT alpha_pattern).")
    peft_layers_pattern: list[str] | str | None = Field(None, description="Name of the layer list peft_layers_to_transform indexes.")
    peft_layer_replication: list[tuple[int, int]] | None = Field(None, description="Layer ranges to replicate (PEFT layer_replication).")
    peft_init_lora_weights: bool | str | None = Field(None, description="LoRA initialisation (PEFT init_lora_weights: true, gaussian, pissa, olora, ...).")
    peft_trainable_token_indices: list[int] | dict[str, list[int]] | None = Field(None, description="Token rows of embed_tokens to train alongside LoRA.")
    peft_ensure_weight_tying: bool | None = Field(None, description="Tie the adapters of tied weights (PEFT ensure_weight_tying).")
    peft_autocast_adapter_dtype: bool | None = Field(None, description="Keep adapter weights in float32 (PEFT's default: true).")
    lora_mlp_kernel: bool | None = Field(None, description="Fused LoRA autograd function for gated MLPs (gate/up/down): saves less for backward (docs/memory.md).")
    lora_qkv_kernel: bool | None = Field(None, description="Fused LoRA autograd function for the q/k/v projections (docs/memory.md).")
    lora_o_kernel: bool | None = Field(None, description="Fused LoRA autograd function for the attention output projection (docs/memory.md).")

    @model_validator(mode="after")
    def _new_adapter_keys_need_a_new_adapter(self) -> AdapterSection:
        shaping = [k for k in NEW_ADAPTER_KEYS if getattr(self, k) is not None]
        adapter_keys = [*shaping, *(["peft_autocast_adapter_dtype"] if self.peft_autocast_adapter_dtype is not None else [])]
        if adapter_keys and not self.adapter:
            raise ValueError(f"{', '.join(adapter_keys)} need adapter: lora or qlora")
        if shaping and self.lora_model_dir:
            raise ValueError(f"{', '.join(shaping)} shape a new adapter; with lora_model_dir the saved "
                             "adapter_config.json decides them: remove them")
        return self

    @model_validator(mode="after")
    def _lora_kernels_serve_plain_lora(self) -> AdapterSection:
        kernels = [k for k in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel") if getattr(self, k)]
        if not kernels:
            return self
        named = ", ".join(kernels)
        if not self.adapter:
            raise ValueError(f"{named} need adapter: lora or qlora")
        if self.lora_dropout > 0:
            raise ValueError(f"{named} need lora_dropout: 0 (the fused kernels apply no dropout)")
        if self.peft_use_dora:
            raise ValueError(f"{named} do not support peft_use_dora (DoRA); set them to false")
        if self.lora_fan_in_fan_out:
            raise ValueError(f"{named} do not support lora_fan_in_fan_out")
        return self


# keys that only shape a newly created adapter (a saved one brings its own adapter_config.json)
NEW_ADAPTER_KEYS: tuple[str, ...] = (
    "lora_target_parameters", "lora_rank_pattern", "lora_alpha_pattern", "peft_layers_pattern",
    "peft_layer_replication", "peft_init_lora_weights", "peft_trainable_token_indices", "peft_ensure_weight_tying",
)
