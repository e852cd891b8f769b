"""The keys lathe-swanlab adds to the config: Axolotl's SwanLab keys, names and meanings."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, field_validator

from lathe.config import ConfigModel, secret_field

Mode = Literal["cloud", "local", "offline", "disabled"]

# key → environment variable read when the key is not set
ENV_FALLBACKS = {
    "swanlab_api_key": "SWANLAB_API_KEY",
    "swanlab_lark_webhook_url": "SWANLAB_LARK_WEBHOOK_URL",
    "swanlab_lark_secret": "SWANLAB_LARK_SECRET",
}


class SwanLabConfig(ConfigModel):
    use_swanlab: bool | None = Field(
        None, description="Track the run with SwanLab. Unset: on when swanlab_project is set."
    )
    swanlab_project: str | None = Field(None, description="SwanLab project name (required when SwanLab is on).")
    swanlab_experiment_name: str | None = Field(None, description="Experiment name; SwanLab generates one if unset.")
    swanlab_description: str | None = Field(None, description="Experiment description.")
    swanlab_mode: Mode | None = Field(
        None,
        description="cloud (sync to SwanLab, the default), local (local only), offline (save locally, "
        "`swanlab sync` later) or disabled.",
    )
    swanlab_workspace: str | None = Field(None, description="Workspace (organisation or user name).")
    swanlab_api_key: str | None = secret_field(description="API key; prefer the SWANLAB_API_KEY environment variable.")
    swanlab_web_host: str | None = Field(None, description="Web address of a private SwanLab deployment.")
    swanlab_api_host: str | None = Field(None, description="API address of a private SwanLab deployment.")
    swanlab_log_model: bool = Field(
        False, description="Upload the final model (output_dir's files) to the run; cloud mode only."
    )
    swanlab_lark_webhook_url: str | None = secret_field(
        description="Lark (Feishu) custom-bot webhook: notified when training starts, completes or fails. "
        "Or SWANLAB_LARK_WEBHOOK_URL."
    )
    swanlab_lark_secret: str | None = secret_field(
        description="The bot's signing secret (HMAC-SHA256 signature). Or SWANLAB_LARK_SECRET."
    )
    swanlab_log_completions: bool = Field(
        True, description="Log completion tables of preference/RL trainers (rlhf_completions)."
    )
    swanlab_completion_log_interval: int = Field(100, ge=1, description="Steps between completion tables.")
    swanlab_completion_max_buffer: int = Field(
        128, ge=1, description="Completions kept between tables (the oldest are dropped)."
    )

    @field_validator("swanlab_project")
    @classmethod
    def _project_not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("swanlab_project cannot be an empty string; give a project name or remove the key")
        return value


def enabled(cfg: object) -> bool:
    """SwanLab is on: ``use_swanlab: true``, or unset with a project (Axolotl's auto-enable)."""
    use = getattr(cfg, "use_swanlab", None)
    return bool(use) or (use is None and bool(getattr(cfg, "swanlab_project", None)))


def setting(cfg: object, key: str) -> str | None:
    """A secret-bearing key's value, from the config or else its environment variable."""
    value = getattr(cfg, key, None)
    if value:
        return str(value)
    return os.environ.get(ENV_FALLBACKS[key]) or None


def mode(cfg: object) -> str:
    return getattr(cfg, "swanlab_mode", None) or "cloud"
