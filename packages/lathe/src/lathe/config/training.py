"""Batch geometry, optimisation, evaluation, checkpointing and output keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lathe.config.base import ConfigModel

Optimizer = Literal[
    "adamw_torch", "adamw_torch_fused", "sgd", "adafactor", "adamw_8bit", "paged_adamw_8bit"
]
Scheduler = Literal["cosine", "linear", "constant", "constant_with_warmup"]


class TrainingSection(ConfigModel):
    output_dir: str = "./outputs"
    seed: int = 42

    micro_batch_size: int = Field(1, ge=1)
    eval_batch_size: int | None = Field(None, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    num_epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)

    optimizer: Optimizer = "adamw_torch"
    learning_rate: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, ge=0)
    adam_beta1: float | None = Field(None, gt=0, lt=1)
    adam_beta2: float | None = Field(None, gt=0, lt=1)
    adam_epsilon: float | None = Field(None, gt=0)
    lr_scheduler: Scheduler = "cosine"
    cosine_min_lr_ratio: float | None = Field(None, ge=0, le=1)
    warmup_steps: int | None = Field(None, ge=0)
    warmup_ratio: float | None = Field(None, ge=0, le=1)

    eval_steps: int | None = Field(None, ge=1)
    evals_per_epoch: int | None = Field(None, ge=1)
    save_steps: int | None = Field(None, ge=1)
    saves_per_epoch: int | None = Field(None, ge=1)
    save_total_limit: int | None = Field(None, ge=1)
    early_stopping_patience: int | None = Field(None, ge=1)
    logging_steps: int = Field(1, ge=1)

    resume_from_checkpoint: str | None = None
    auto_resume_from_checkpoints: bool = False
    overwrite_output_dir: bool = Field(False, description="Allow output_dir to hold a different run's config.")
    nan_policy: Literal["stop", "skip"] = Field("stop", description="On a non-finite loss or gradient: stop the run, or skip the step.")

    group_by_length: bool = False
    dataloader_num_workers: int = Field(0, ge=0)
    dataloader_pin_memory: bool | None = None
    training_args_extra: dict[str, Any] | None = Field(None, description="Extra transformers TrainingArguments.")
