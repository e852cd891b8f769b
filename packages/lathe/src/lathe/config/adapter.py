"""LoRA / QLoRA adapter keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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
