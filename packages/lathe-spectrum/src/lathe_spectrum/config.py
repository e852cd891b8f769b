"""The keys lathe-spectrum adds to the config (Axolotl's names, plus the results directory)."""

from pydantic import Field

from lathe.config import ConfigModel


class SpectrumConfig(ConfigModel):
    spectrum_top_fraction: float = Field(
        0.5, gt=0, le=1, description="Share of the layers of each type (q_proj, down_proj, ...) to train, by SNR."
    )
    spectrum_model_name: str | None = Field(
        None, description="Name the SNR results are stored under; default base_model."
    )
    spectrum_snr_dir: str = Field(
        "model_snr_results",
        description="Directory of SNR results (snr_results_<model>.json); scanned results are cached here.",
    )
