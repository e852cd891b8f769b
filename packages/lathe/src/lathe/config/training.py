"""Batch geometry, optimisation, evaluation, checkpointing and output keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lathe.config import optimizer_names
from lathe.config.base import ConfigModel
from lathe.config.suggest import typo_of

# the backends accelerate's dynamo plugin (which compiles the model for the Trainer) accepts
CompileBackend = Literal[
    "eager", "aot_eager", "inductor", "aot_ts_nvfuser", "nvprims_nvfuser", "cudagraphs", "ofi", "fx2trt",
    "onnxrt", "tensorrt", "aot_torchxla_trace_once", "torchxla_trace_once", "ipex", "tvm", "hpu_backend",
]

# the inductor flags Axolotl lets a config set (its INDUCTOR_COMPILE_OPTIONS_ALLOWLIST)
INDUCTOR_OPTIONS = frozenset({
    "coordinate_descent_tuning", "coordinate_descent_check_all_directions", "shape_padding",
    "epilogue_fusion", "max_autotune_gemm", "fx_graph_cache", "assume_aligned_inputs",
    "comprehensive_padding", "decompose_mem_bound_mm", "triton.cudagraphs",
})

# transformers' SchedulerType values, and Axolotl's one_cycle and rex (built by lathe.train.schedulers).
Scheduler = Literal[
    "cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial",
    "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
    "warmup_stable_decay", "greedy", "one_cycle", "rex",
]


class LrGroup(ConfigModel):
    """One entry of ``lr_groups``: parameters whose names contain one of ``modules`` learn at ``lr``."""

    name: str
    modules: list[str]
    lr: float = Field(gt=0)


class TrainingSection(ConfigModel):
    output_dir: str = "./outputs"
    seed: int = 42

    micro_batch_size: int = Field(1, ge=1)
    auto_find_batch_size: bool = Field(False, description="On out-of-memory, shrink micro_batch_size (accelerate: to 90%) and start the run again.")
    eval_batch_size: int | None = Field(None, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    num_epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)

    optimizer: str = Field("adamw_torch_fused", description="Any optimizer name Axolotl accepts (default: torch's fused AdamW, as Axolotl); see docs/training.md#optimizers.")
    optim_args: str | dict[str, Any] | None = Field(None, description="Extra optimizer arguments: a dict, or 'key=value,key=value'.")
    optim_target_modules: list[str] | Literal["all_linear"] | None = Field(None, description="Modules GaLore/APOLLO optimizers project (names or regexes).")
    learning_rate: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    embedding_lr: float | None = Field(None, gt=0, description="Learning rate of embed_tokens/lm_head.")
    embedding_lr_scale: float | None = Field(None, gt=0, description="embed_tokens/lm_head learn at learning_rate × this.")
    lr_groups: list[LrGroup] | None = Field(None, description="Named groups of modules with their own learning rate.")
    loraplus_lr_ratio: float | None = Field(None, gt=0, description="LoRA+: LoRA B matrices learn this many times faster (PEFT).")
    loraplus_lr_embedding: float | None = Field(None, gt=0, description="LoRA+: learning rate of embedding LoRA parameters (default 1e-6).")
    max_grad_norm: float | None = Field(1.0, ge=0, description="Clip gradients to this norm; 0 turns clipping off (null is unset: 1.0).")
    adam_beta1: float | None = Field(None, gt=0, lt=1)
    adam_beta2: float | None = Field(None, gt=0, lt=1)
    adam_epsilon: float | None = Field(None, gt=0)
    adam_beta3: float | None = Field(None, gt=0, lt=1, description="Third beta of the came_pytorch optimizer.")
    adam_epsilon2: float | None = Field(None, gt=0, description="Second epsilon of the came_pytorch optimizer.")
    lr_scheduler: Scheduler = "cosine"
    lr_scheduler_kwargs: dict[str, Any] | None = Field(None, description="Arguments of the transformers scheduler (or one_cycle).")
    cosine_min_lr_ratio: float | None = Field(None, ge=0, le=1, description="cosine/rex: decay to this fraction of learning_rate.")
    cosine_constant_lr_ratio: float | None = Field(None, ge=0, le=1, description="cosine: reach the floor at this fraction of the steps, then stay.")
    lr_quadratic_warmup: bool = Field(False, description="cosine: warm up as (step/warmup)^2.")
    warmup_steps: int | None = Field(None, ge=0)
    warmup_ratio: float | None = Field(None, ge=0, le=1)

    eval_steps: int | None = Field(None, ge=0, description="Evaluate every N steps; 0 means no evaluation.")
    evals_per_epoch: int | None = Field(None, ge=0, description="Evaluations per epoch; 0 means no evaluation.")
    eval_strategy: Literal["no", "steps", "epoch"] | None = Field(None, description="no: never evaluate; epoch: at each epoch end; default from eval_steps/evals_per_epoch.")
    save_steps: int | None = Field(None, ge=1)
    saves_per_epoch: int | None = Field(None, ge=1)
    save_strategy: Literal["no", "steps", "epoch", "best"] | None = Field(None, description="no: no checkpoints (the final model is still saved); best: whenever metric_for_best_model improves; default from save_steps/saves_per_epoch, else epoch.")
    load_best_model_at_end: bool = Field(False, description="Load the best checkpoint (by metric_for_best_model) at the end.")
    metric_for_best_model: str | None = Field(None, description="Eval metric for the best checkpoint (default eval_loss).")
    greater_is_better: bool | None = Field(None, description="Whether a larger metric_for_best_model is better (default: no for a loss).")
    save_total_limit: int | None = Field(None, ge=1)
    save_only_model: bool = Field(False, description="Checkpoints hold the weights only (no optimizer/scheduler state): they cannot be resumed.")
    loss_watchdog_threshold: float | None = Field(None, description="Stop the run when the logged loss exceeds this for loss_watchdog_patience logs in a row.")
    loss_watchdog_patience: int | None = Field(None, ge=1, description="Logged losses in a row above loss_watchdog_threshold before stopping (default 3).")
    unfrozen_parameters: list[str] | None = Field(None, description="Regexes of parameter names to train (name[start:end] trains those rows only); all else is frozen.")
    early_stopping_patience: int | None = Field(None, ge=1)
    logging_steps: int = Field(1, ge=1)

    resume_from_checkpoint: str | None = None
    auto_resume_from_checkpoints: bool = False
    overwrite_output_dir: bool = Field(False, description="Allow output_dir to hold a different run's config.")
    nan_policy: Literal["stop", "skip"] = Field("stop", description="On a non-finite loss or gradient: stop the run, or skip the step.")

    torch_compile: bool | Literal["auto"] | None = Field(None, description="Compile the model with torch.compile; auto: where torch >= 2.5.1.")
    torch_compile_backend: CompileBackend | None = Field(None, description="torch.compile backend (default inductor).")
    torch_compile_mode: Literal["default", "reduce-overhead", "max-autotune"] | None = None
    torch_compile_options: dict[str, bool | int | float | str] | None = Field(None, description="Inductor flags for this run (Axolotl's allowlist).")

    group_by_length: bool = False
    curriculum_sampling: bool = Field(False, description="Train on the rows in dataset order (a sequential sampler) instead of shuffled.")
    dataloader_num_workers: int = Field(0, ge=0)
    dataloader_pin_memory: bool | None = None
    dataloader_prefetch_factor: int | None = Field(None, ge=1, description="Batches each dataloader worker loads ahead (needs dataloader_num_workers > 0).")
    dataloader_drop_last: bool = Field(False, description="Drop the last incomplete batch of each epoch.")
    neftune_noise_alpha: float | None = Field(None, gt=0, description="NEFTune: uniform noise of scale alpha/sqrt(len·dim) on the input embeddings while training.")
    save_first_step: bool = Field(False, description="Also save a checkpoint after the first step.")
    training_args_extra: dict[str, Any] | None = Field(None, description="Extra transformers TrainingArguments.")

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, name: str) -> str:
        if name in optimizer_names.ACCEPTED:
            return name
        if name in optimizer_names.REFUSED:
            raise ValueError(f"optimizer {name!r} is not available in lathe: {optimizer_names.REFUSED[name]}")
        close = typo_of(name, sorted(optimizer_names.ACCEPTED))
        hint = f"; did you mean {close!r}?" if close else ""
        raise ValueError(f"unknown optimizer {name!r}{hint} (the accepted names are listed in docs/training.md#optimizers)")

    @model_validator(mode="after")
    def _arguments_are_read(self) -> TrainingSection:
        if self.optim_args and self.optimizer in optimizer_names.NO_OPTIM_ARGS:
            raise ValueError(
                f"optim_args: optimizer {self.optimizer} reads no optim_args; set adam_beta1, adam_beta2, "
                "adam_epsilon and weight_decay instead"
            )
        read = optimizer_names.OPTIM_ARGS_READ.get(self.optimizer)
        given = set(self.optim_args) if isinstance(self.optim_args, dict) else {
            item.partition("=")[0].strip() for item in (self.optim_args or "").split(",") if item.strip()}
        if read is not None and given - read:
            unread = ", ".join(sorted(given - read))
            raise ValueError(f"optim_args: optimizer {self.optimizer} reads only {', '.join(sorted(read))}, not {unread}")
        if self.optimizer in optimizer_names.NEED_TARGET_MODULES and not self.optim_target_modules:
            raise ValueError(f"optimizer {self.optimizer} needs optim_target_modules (module names, or all_linear)")
        if self.optim_target_modules and self.optimizer not in optimizer_names.NEED_TARGET_MODULES:
            raise ValueError("optim_target_modules is read only by the galore_* and apollo_* optimizers")
        self._group_arguments()
        self._scheduler_arguments()
        self._eval_and_save_arguments()
        return self

    def _eval_and_save_arguments(self) -> None:
        if self.eval_strategy and self.eval_strategy != "steps" and (self.eval_steps or self.evals_per_epoch):
            raise ValueError(f"eval_strategy: {self.eval_strategy} contradicts eval_steps/evals_per_epoch (set it to steps or remove it)")
        if self.save_strategy and self.save_strategy != "steps" and (self.save_steps or self.saves_per_epoch):
            raise ValueError(f"save_strategy: {self.save_strategy} contradicts save_steps/saves_per_epoch (set it to steps or remove it)")
        if self.save_only_model and (self.resume_from_checkpoint or self.auto_resume_from_checkpoints):
            raise ValueError("save_only_model: checkpoints without optimizer state cannot be resumed; "
                             "drop resume_from_checkpoint/auto_resume_from_checkpoints or save_only_model")
        if self.save_strategy == "best" and not self.metric_for_best_model:
            raise ValueError("save_strategy: best needs metric_for_best_model (e.g. eval_loss)")
        best_used = self.load_best_model_at_end or self.save_strategy == "best" or self.early_stopping_patience
        if (self.metric_for_best_model or self.greater_is_better is not None) and not best_used:
            raise ValueError("metric_for_best_model/greater_is_better are read only with load_best_model_at_end, "
                             "save_strategy: best or early_stopping_patience")
        if self.save_strategy == "no" and self.load_best_model_at_end:
            raise ValueError("load_best_model_at_end needs checkpoints: remove save_strategy: no")
        if self.save_strategy == "no" and self.early_stopping_patience:
            raise ValueError("early_stopping_patience keeps the best checkpoint, so it needs checkpoints: remove save_strategy: no")
        compile_keys = [k for k in ("torch_compile_backend", "torch_compile_mode", "torch_compile_options") if getattr(self, k)]
        if compile_keys and not self.torch_compile:
            raise ValueError(f"{', '.join(compile_keys)} need torch_compile: true (or auto)")
        bad = sorted(set(self.torch_compile_options or {}) - INDUCTOR_OPTIONS)
        if bad:
            raise ValueError(f"torch_compile_options: {', '.join(bad)} not allowed (Axolotl's inductor allowlist)")
        if self.curriculum_sampling and self.group_by_length:
            raise ValueError("set curriculum_sampling (dataset order) or group_by_length (length buckets), not both")
        if self.dataloader_prefetch_factor is not None and not self.dataloader_num_workers:
            raise ValueError("dataloader_prefetch_factor needs dataloader_num_workers > 0")
        if self.loss_watchdog_patience is not None and self.loss_watchdog_threshold is None:
            raise ValueError("loss_watchdog_patience needs loss_watchdog_threshold")

    def _group_arguments(self) -> None:
        if self.embedding_lr is not None and self.embedding_lr_scale is not None:
            raise ValueError("set embedding_lr or embedding_lr_scale, not both")
        if self.loraplus_lr_embedding is not None and self.loraplus_lr_ratio is None:
            raise ValueError("loraplus_lr_embedding needs loraplus_lr_ratio")
        grouped = [k for k in ("embedding_lr", "embedding_lr_scale", "lr_groups") if getattr(self, k) is not None]
        if self.loraplus_lr_ratio is not None and grouped:
            raise ValueError(f"loraplus_lr_ratio builds its own parameter groups; it cannot be combined with {', '.join(grouped)}")
        special = optimizer_names.NEED_TARGET_MODULES | {"lomo", "adalomo"}
        if (grouped or self.loraplus_lr_ratio is not None) and self.optimizer in special:
            raise ValueError(f"optimizer {self.optimizer} builds its own parameter groups; per-group learning rates are not available with it")

    def _scheduler_arguments(self) -> None:
        sched = self.lr_scheduler
        if self.cosine_min_lr_ratio is not None and sched not in ("cosine", "rex"):
            raise ValueError(f"cosine_min_lr_ratio is read only with lr_scheduler: cosine or rex, not {sched}")
        if self.cosine_constant_lr_ratio is not None and (sched != "cosine" or self.cosine_min_lr_ratio is None):
            raise ValueError("cosine_constant_lr_ratio needs lr_scheduler: cosine and cosine_min_lr_ratio")
        if self.lr_quadratic_warmup and (sched != "cosine" or self.cosine_min_lr_ratio is not None):
            raise ValueError("lr_quadratic_warmup needs lr_scheduler: cosine without cosine_min_lr_ratio")
        kwargs = self.lr_scheduler_kwargs or {}
        lathe_built = sched == "rex" or (sched == "cosine" and (self.cosine_min_lr_ratio is not None or self.lr_quadratic_warmup))
        if kwargs and lathe_built:
            raise ValueError(f"lr_scheduler_kwargs are not read by lr_scheduler: {sched} with these settings")
        if sched in ("cosine_with_min_lr", "cosine_warmup_with_min_lr") and not {"min_lr", "min_lr_rate"} & set(kwargs):
            raise ValueError(f"lr_scheduler: {sched} needs lr_scheduler_kwargs min_lr or min_lr_rate (or use cosine with cosine_min_lr_ratio)")
        if sched == "warmup_stable_decay" and "num_decay_steps" not in kwargs:
            raise ValueError("lr_scheduler: warmup_stable_decay needs lr_scheduler_kwargs num_decay_steps")
