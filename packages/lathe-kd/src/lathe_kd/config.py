"""The keys lathe-kd adds to the config (Axolotl's names and meanings)."""

from __future__ import annotations

from pydantic import Field

from lathe.config import ConfigModel, data_field


class KDConfig(ConfigModel):
    kd_trainer: bool = Field(
        True, description="Train with the distillation loss; false trains plain cross-entropy on the same data."
    )
    kd_ce_alpha: float = Field(0.0, ge=0, description="Weight of the cross-entropy on the dataset's tokens.")
    kd_alpha: float = Field(1.0, ge=0, description="Weight of the distillation term (multiplied by T²).")
    kd_temperature: float = data_field(
        1.0, gt=0, description="Temperature T of the distillation; teacher logprobs are rescaled to it."
    )
    kd_beta: float = Field(
        0.0, ge=0, le=1, description="0 forward KL(teacher‖student), 1 reverse KL, between: generalised JSD."
    )
    kd_normalize_topk: bool = data_field(
        True, description="Renormalise the teacher's top-k probabilities to sum to 1."
    )
