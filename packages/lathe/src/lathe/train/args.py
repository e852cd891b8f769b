"""``transformers.TrainingArguments`` from the config: batch geometry, optimisation,
eval/save cadence, logging destinations, then ``training_args_extra`` and plugins' overrides."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import torch

from lathe.distributed.engine import distributed_training_args
from lathe.errors import LatheError
from lathe.models.loading import use_bf16
from lathe.train.compile import training_args_compile
from lathe.train.deepspeed import deepspeed_config, deepspeed_process_setup
from lathe.train.offload import gc_intervals
from lathe.train.optimizers import training_args_optim

if TYPE_CHECKING:
    from transformers import TrainingArguments

    from lathe.config import Config
    from lathe.plugins import Plugins


def steps_per_epoch(cfg: Config, train_rows: int) -> int:
    return max(1, math.ceil(train_rows / (cfg.micro_batch_size * cfg.gradient_accumulation_steps)))


def _every(steps: int | None, per_epoch: int | None, epoch_steps: int) -> int | None:
    """A step interval from ``*_steps`` or from ``*s_per_epoch``."""
    if steps:
        return steps
    if per_epoch:
        return max(1, epoch_steps // per_epoch)
    return None


def scheduler(cfg: Config) -> tuple[str, dict[str, Any]]:
    """(lr_scheduler_type, lr_scheduler_kwargs) for transformers. one_cycle and rex are built
    by :mod:`lathe.train.schedulers` (the type is then only a placeholder)."""
    if cfg.lr_scheduler in ("one_cycle", "rex"):
        return "cosine", {}
    return cfg.lr_scheduler, dict(cfg.lr_scheduler_kwargs or {})


def report_to(cfg: Config) -> list[str]:
    """Experiment trackers named by the config; their settings go to the env vars they read."""
    targets = []
    if cfg.use_tensorboard:
        targets.append("tensorboard")
    if cfg.use_wandb or cfg.wandb_project:
        targets.append("wandb")
        for key, var in (("wandb_project", "WANDB_PROJECT"), ("wandb_entity", "WANDB_ENTITY"),
                         ("wandb_name", "WANDB_NAME"), ("wandb_run_id", "WANDB_RUN_ID"),
                         ("wandb_mode", "WANDB_MODE"), ("wandb_log_model", "WANDB_LOG_MODEL"),
                         ("wandb_api_key", "WANDB_API_KEY")):
            value = getattr(cfg, key)
            if value:
                os.environ[var] = str(value)
    if cfg.use_mlflow or cfg.mlflow_experiment_name:
        targets.append("mlflow")
        if cfg.mlflow_experiment_name:
            os.environ["MLFLOW_EXPERIMENT_NAME"] = cfg.mlflow_experiment_name
        if cfg.mlflow_tracking_uri:
            os.environ["MLFLOW_TRACKING_URI"] = cfg.mlflow_tracking_uri
        if cfg.mlflow_run_name:
            os.environ["MLFLOW_RUN_NAME"] = cfg.mlflow_run_name
    return targets or ["none"]


_TRACKER_PACKAGES = {"tensorboard": ("tensorboard", "pip install 'lathe[tensorboard]'"),
                     "wandb": ("wandb", "pip install wandb"), "mlflow": ("mlflow", "pip install mlflow")}


def require_trackers(targets: list[str]) -> None:
    """Each tracker's package is installed, or a clear error says what to install."""
    import importlib.util

    for target in targets:
        module, install = _TRACKER_PACKAGES.get(target, (None, ""))
        if module and importlib.util.find_spec(module) is None:
            raise LatheError(f"logging to {target} needs the {module} package: {install}")


def evaluation_enabled(cfg: Config, has_eval: bool) -> bool:
    """Whether the run evaluates at all: an eval set, and not turned off by ``eval_strategy: no``,
    ``eval_steps: 0`` or ``evals_per_epoch: 0`` (Axolotl's ways of saying "no evaluation")."""
    return has_eval and cfg.eval_strategy != "no" and cfg.eval_steps != 0 and cfg.evals_per_epoch != 0


def training_arguments_dict(cfg: Config, train_rows: int, has_eval: bool) -> dict[str, Any]:
    """Keyword arguments of ``TrainingArguments`` the config implies (before overrides)."""
    epoch_steps = steps_per_epoch(cfg, train_rows)
    sched, sched_kwargs = scheduler(cfg)
    warmup: float = 0
    if cfg.warmup_steps is not None:
        warmup = cfg.warmup_steps
    elif cfg.warmup_ratio is not None:
        warmup = cfg.warmup_ratio
    kwargs: dict[str, Any] = dict(
        output_dir=cfg.output_dir,
        seed=cfg.seed,
        data_seed=cfg.seed,
        per_device_train_batch_size=cfg.micro_batch_size,
        auto_find_batch_size=cfg.auto_find_batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size or cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps or -1,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm or 0.0,
        lr_scheduler_type=sched,
        lr_scheduler_kwargs=sched_kwargs,
        warmup_steps=warmup,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        report_to=report_to(cfg),
        neftune_noise_alpha=cfg.neftune_noise_alpha,
        dataloader_drop_last=cfg.dataloader_drop_last,
        bf16=use_bf16(cfg),
        fp16=bool(cfg.fp16),
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "sequential" if cfg.curriculum_sampling else "random",
        dataloader_num_workers=cfg.dataloader_num_workers,
        dataloader_pin_memory=torch.cuda.is_available() if cfg.dataloader_pin_memory is None else cfg.dataloader_pin_memory,
        remove_unused_columns=False,
        disable_tqdm=False,
    )
    kwargs.update(training_args_optim(cfg))
    kwargs.update(distributed_training_args(cfg))
    kwargs.update(training_args_compile(cfg))
    empty_cache_steps = gc_intervals(cfg)[0]
    if empty_cache_steps:
        kwargs["torch_empty_cache_steps"] = empty_cache_steps
    ds_config = deepspeed_config(cfg)
    if ds_config is not None:
        kwargs["deepspeed"] = ds_config
    if cfg.dataloader_prefetch_factor is not None:
        kwargs["dataloader_prefetch_factor"] = cfg.dataloader_prefetch_factor
    for key, value in (("adam_beta1", cfg.adam_beta1), ("adam_beta2", cfg.adam_beta2), ("adam_epsilon", cfg.adam_epsilon)):
        if value is not None:
            kwargs[key] = value
    if kwargs["bf16"] and not (torch.cuda.is_available() or torch.backends.mps.is_available()):
        kwargs["use_cpu"] = True  # bf16: true on a CPU-only machine (autocast on the CPU)
    if cfg.tf32 and torch.cuda.is_available():
        kwargs["tf32"] = True
    if cfg.gradient_checkpointing:
        kwargs["gradient_checkpointing"] = False  # enabled on the model by lathe.models (with its kwargs)

    evaluating = evaluation_enabled(cfg, has_eval)
    eval_every = _every(cfg.eval_steps, cfg.evals_per_epoch, epoch_steps) if evaluating else None
    if eval_every:
        kwargs.update(eval_strategy="steps", eval_steps=eval_every)
    elif evaluating and cfg.eval_strategy:  # steps (every logging_steps, as transformers) or epoch
        kwargs["eval_strategy"] = cfg.eval_strategy
    save_every = _every(cfg.save_steps, cfg.saves_per_epoch, epoch_steps)
    if save_every:
        kwargs.update(save_strategy="steps", save_steps=save_every)
    else:
        kwargs["save_strategy"] = cfg.save_strategy or "epoch"
    if cfg.save_total_limit:
        kwargs["save_total_limit"] = cfg.save_total_limit
    if cfg.save_only_model:
        kwargs["save_only_model"] = True
    if cfg.early_stopping_patience:
        if not eval_every:
            raise LatheError("early_stopping_patience needs evaluation: set eval_steps or evals_per_epoch")
        if not save_every and cfg.save_strategy != "best":
            kwargs.update(save_strategy="steps", save_steps=eval_every)
        elif save_every and save_every % eval_every:
            raise LatheError(
                f"early_stopping_patience: the save interval ({save_every}) must be a multiple of the eval interval ({eval_every})"
            )
        kwargs["load_best_model_at_end"] = True
    kwargs.update(_best_model(cfg, kwargs))
    return kwargs


def _best_model(cfg: Config, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``load_best_model_at_end``, ``metric_for_best_model`` (default eval_loss) and
    ``greater_is_better`` (default: lower is better for a loss), as Axolotl passes them."""
    wants_best = cfg.load_best_model_at_end or kwargs.get("load_best_model_at_end") or kwargs["save_strategy"] == "best"
    if not wants_best:
        return {}
    if kwargs.get("eval_strategy", "no") == "no":
        key = "save_strategy: best" if kwargs["save_strategy"] == "best" else "load_best_model_at_end"
        raise LatheError(f"{key} needs evaluation: an eval set and eval_steps, evals_per_epoch or eval_strategy")
    metric = cfg.metric_for_best_model or "eval_loss"
    greater = cfg.greater_is_better if cfg.greater_is_better is not None else not metric.endswith("loss")
    out: dict[str, Any] = {"metric_for_best_model": metric, "greater_is_better": greater}
    if cfg.load_best_model_at_end or cfg.early_stopping_patience:
        out["load_best_model_at_end"] = True
    return out


def build_training_arguments(cfg: Config, plugins: Plugins, train_rows: int, has_eval: bool) -> TrainingArguments:
    from transformers import TrainingArguments

    kwargs = training_arguments_dict(cfg, train_rows, has_eval)
    require_trackers(kwargs["report_to"])
    kwargs.update(cfg.training_args_extra or {})
    if kwargs.get("deepspeed"):
        kwargs.update(deepspeed_process_setup())
    kwargs.update(plugins.call("lathe_training_args", cfg=cfg))
    try:
        args = TrainingArguments(**kwargs)
    except TypeError as exc:
        raise LatheError(f"training_args_extra: {exc}") from exc
    except ValueError as exc:
        raise LatheError(f"training arguments: {exc}") from exc
    mismatches = getattr(getattr(args, "hf_deepspeed_config", None), "mismatches", None)
    if mismatches:  # transformers would raise this only once the engine starts, as a traceback
        raise LatheError("deepspeed: the DeepSpeed config contradicts this config (set those values to \"auto\" "
                         "or change the config):\n" + "\n".join(mismatches))
    return args
