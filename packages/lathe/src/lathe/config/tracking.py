"""Experiment tracking, hub token and plugin keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lathe.config.base import ConfigModel
from lathe.config.fields import secret_field


class TrackingSection(ConfigModel):
    plugins: list[str] = Field(default_factory=list, description="Plugins to enable, by name.")
    use_tensorboard: bool = False
    use_wandb: bool | None = Field(None, description="Log to Weights & Biases; on by default when wandb_project is set.")
    use_mlflow: bool | None = Field(None, description="Log to MLflow; on by default when mlflow_experiment_name is set.")
    wandb_project: str | None = None
    wandb_entity: str | None = None
    wandb_name: str | None = None
    wandb_run_id: str | None = None
    wandb_mode: Literal["online", "offline", "disabled"] | None = None
    wandb_log_model: str | None = None
    wandb_api_key: str | None = secret_field(description="Prefer the WANDB_API_KEY environment variable.")
    mlflow_experiment_name: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_run_name: str | None = None
    hub_model_id: str | None = Field(
        None, description="Push the finished output_dir to this Hub repo (created if missing) after training."
    )
    hub_strategy: Literal["end"] | None = Field(
        None, description="When to push: 'end' (the finished model; pushing checkpoints is not implemented)."
    )
    hub_revision: str | None = Field(None, description="Branch to push to (created if missing); default main.")
    hub_private_repo: bool | None = Field(None, description="Create the Hub repo private (when it does not exist).")
    hub_token: str | None = secret_field(
        description="Token for private hub models and for pushing; prefer the HF_TOKEN environment variable."
    )

    @model_validator(mode="after")
    def _tracker_switches(self) -> TrackingSection:
        for switch, named in (("use_wandb", "wandb_project"), ("use_mlflow", "mlflow_experiment_name")):
            if getattr(self, switch) is False and getattr(self, named):
                raise ValueError(f"{switch}: false contradicts {named} (which turns it on, as in Axolotl): remove one")
        return self
