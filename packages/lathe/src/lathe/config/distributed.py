"""Multi-GPU keys, passed to accelerate / transformers."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lathe.config.base import ConfigModel


class DistributedSection(ConfigModel):
    deepspeed: str | dict[str, Any] | None = Field(None, description="DeepSpeed config file or dict.")
    fsdp: list[str] | None = Field(None, description="FSDP options, e.g. [full_shard, auto_wrap].")
    fsdp_config: dict[str, Any] | None = None
    fsdp_version: int | None = Field(None, ge=1, le=2)
    ddp_timeout: int | None = Field(None, ge=1)
    ddp_find_unused_parameters: bool | None = None
