"""The keys lathe-grokfast adds to the config."""

from typing import Any

from pydantic import Field, model_validator

from lathe.config import ConfigModel


class GrokfastConfig(ConfigModel):
    grokfast_alpha: float = Field(0.98, ge=0, lt=1, description="EMA decay of the gradient filter.")
    grokfast_lamb: float = Field(2.0, ge=0, description="Weight of the slow (EMA) gradient added to each gradient.")

    @model_validator(mode="before")
    @classmethod
    def _swapped_values(cls, data: Any) -> Any:
        """Axolotl's Grokfast README swaps the two values (alpha 2.0, lamb 0.98): say so."""
        if not isinstance(data, dict):
            return data
        alpha, lamb = data.get("grokfast_alpha"), data.get("grokfast_lamb", 2.0)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (alpha, lamb))
        if numbers and alpha >= 1 and 0 <= lamb < 1:
            raise ValueError(
                f"grokfast_alpha: {alpha} is not an EMA decay (it must be below 1); alpha and lamb look "
                f"swapped (Axolotl's Grokfast README has this mistake): use grokfast_alpha: {lamb} and "
                f"grokfast_lamb: {alpha}"
            )
        return data
