"""DeepSpeed and Ray Train keys: the engines that run the same training on several workers."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from lathe.config.base import ConfigModel


class EnginesSection(ConfigModel):
    deepspeed: str | dict[str, Any] | None = Field(
        None,
        description="DeepSpeed config: a shipped name (zero1, zero2, zero3, zero3_bf16, …; see "
        "docs/distributed.md), a path to a JSON file, or the config itself as a mapping. "
        "'auto' values are filled from the training arguments. Needs lathe[deepspeed].",
    )
    deepcompile: bool | None = Field(
        None, description="Add DeepSpeed's compile section ({deepcompile: true}) when the config has none."
    )
    use_ray: bool = Field(False, description="Train under Ray Train's TorchTrainer (needs lathe[ray]).")
    ray_num_workers: int = Field(1, ge=1, description="Ray Train workers (one process each).")
    resources_per_worker: dict[str, float] | None = Field(
        None,
        description="Ray resources each worker reserves; default {GPU: 1} on a CUDA machine, else {CPU: 1}.",
    )
    ray_run_name: str | None = Field(
        None, description="Ray Train run name; its results are stored under output_dir/<ray_run_name>."
    )

    @field_validator("deepspeed")
    @classmethod
    def _deepspeed_exists(cls, value: Any) -> Any:
        """A name or path that names nothing is an error now, not after the model has loaded."""
        if isinstance(value, str):
            from lathe.train.deepspeed import find_deepspeed_config

            find_deepspeed_config(value)
        return value

    @model_validator(mode="after")
    def _engine_rules(self) -> EnginesSection:
        if self.deepcompile and not self.deepspeed:
            raise ValueError("deepcompile: DeepCompile runs inside DeepSpeed; set deepspeed too")
        if self.deepspeed and getattr(self, "optimizer", None) == "muon":
            raise ValueError("deepspeed: the muon optimizer does not run under DeepSpeed (ZeRO partitions its update)")
        ray_keys = [k for k in ("ray_run_name", "resources_per_worker") if getattr(self, k) is not None]
        if "ray_num_workers" in self.model_fields_set:
            ray_keys.append("ray_num_workers")
        if ray_keys and not self.use_ray:
            raise ValueError(f"{', '.join(ray_keys)}: set use_ray: true to train under Ray")
        return self
