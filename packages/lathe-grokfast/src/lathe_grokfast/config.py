"""The keys lathe-grokfast adds to the config."""

from pydantic import Field

from lathe.config import ConfigModel


class GrokfastConfig(ConfigModel):
    grokfast_alpha: float = Field(0.98, ge=0, lt=1, description="EMA decay of the gradient filter.")
    grokfast_lamb: float = Field(2.0, ge=0, description="Weight of the slow (EMA) gradient added to each gradient.")
