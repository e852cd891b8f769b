"""The key lathe-densemixer adds to the config (Axolotl's name)."""

from pydantic import Field

from lathe.config import ConfigModel


class DenseMixerConfig(ConfigModel):
    dense_mixer: bool = Field(
        True,
        description="On when the plugin is enabled, as in Axolotl. Give MoE routers the straight-through "
        "gradient of all experts (DenseMixer); "
        "the forward pass is unchanged, each step computes every expert on every token.",
    )
