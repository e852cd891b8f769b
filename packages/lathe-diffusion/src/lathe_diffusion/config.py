"""The ``diffusion:`` block lathe-diffusion adds to the config (Axolotl's names and meanings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lathe.config import ConfigModel

DEFAULT_MASK_TOKEN = "<|mask|>"


class DiffusionSection(ConfigModel):
    noise_schedule: Literal["linear", "cosine"] = Field(
        "linear", description="Shape s(t) of the masking level: linear s=t, cosine s=1-cos(pi*t/2)."
    )
    min_mask_ratio: float = Field(0.1, ge=0, le=1, description="Lowest masking probability.")
    max_mask_ratio: float = Field(0.9, gt=0, le=1, description="Highest masking probability.")
    num_diffusion_steps: int = Field(
        128, ge=1, description="Time steps t is drawn from: t = k/num_diffusion_steps, k uniform in 1..N."
    )
    eps: float = Field(1e-3, ge=0, lt=1, description="Floor of the masking level: (1-eps)*s(t)+eps.")
    importance_weighting: bool = Field(
        True, description="Weight each masked token's cross-entropy by 1/p (the LLaDA ELBO)."
    )
    mask_token_str: str | None = Field(
        None, description=f"Mask token text; added to the tokenizer if missing (default {DEFAULT_MASK_TOKEN})."
    )
    mask_token_id: int | None = Field(None, ge=0, description="Id of an existing token to use as the mask.")
    generate_samples: bool = Field(True, description="Log original / masked / generated samples while training.")
    generation_interval: int = Field(100, ge=1, description="Log samples every this many optimizer steps.")
    num_generation_samples: int = Field(3, ge=1, description="Sequences per sample log.")
    generation_steps: int = Field(128, ge=1, description="Unmasking steps when generating.")
    generation_temperature: float = Field(0.0, ge=0, description="Sampling temperature; 0 picks the argmax.")
    generation_max_length: int = Field(
        100, ge=1, description="Tokens per training sample; new tokens for `lathe inference`."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DiffusionSection:
        if self.min_mask_ratio > self.max_mask_ratio:
            raise ValueError(
                f"diffusion.min_mask_ratio ({self.min_mask_ratio}) is above diffusion.max_mask_ratio ({self.max_mask_ratio})"
            )
        if self.mask_token_str is not None and self.mask_token_id is not None:
            raise ValueError("set diffusion.mask_token_str or diffusion.mask_token_id, not both")
        return self

    @property
    def mask_token(self) -> str | None:
        """The mask token text to look up (and add), or None when ``mask_token_id`` names it."""
        if self.mask_token_id is not None:
            return None
        return self.mask_token_str or DEFAULT_MASK_TOKEN


class DiffusionConfig(ConfigModel):
    diffusion: DiffusionSection = Field(default_factory=DiffusionSection)
