"""``lathe train`` and ``lathe evaluate``: the whole run, through the plugin contract.

Order (DESIGN.md §2): pre_model_load → tokenizer (post_tokenizer_load) → data →
model (post_model_build, adapters, post_model_load) → trainer (trainer_cls,
training_args, collator, optimizer, callbacks; post_trainer_create) → train() →
save → post_train; when the run fails, run_error; post_train_unload always.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase, Trainer

    from lathe.config import Config
    from lathe.plugins import Plugins


@dataclass
class TrainResult:
    """What a finished run hands back (``lathe.testing.run_training`` returns it)."""

    output_dir: Path
    metrics: dict[str, float]
    losses: list[float] = field(default_factory=list)
    trainer: Trainer | None = None


def build_trainer(
    cfg: Config, plugins: Plugins, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, train_data: Any,
    eval_data: Any, vision: Any = None,
) -> Trainer:
    """The trainer for this run: class, arguments, collator, optimizer and callbacks from the
    config, each replaceable by the hook of the same name. ``vision`` (a vision-language run)
    brings its own collator and saves its processor with every checkpoint."""
    from transformers import EarlyStoppingCallback, Trainer

    from lathe.chunked_loss import hidden_states_loss
    from lathe.data.collate import BoundaryMasking, FlashVarlen, build_collator
    from lathe.train.args import build_training_arguments
    from lathe.train.guards import GracefulInterrupt, NonFiniteGuard
    from lathe.train.offload import GarbageCollection, gc_intervals, offload_mode
    from lathe.train.optimizers import optimizer_cls_and_kwargs
    from lathe.train.trainer import trainer_class

    args = build_training_arguments(cfg, plugins, len(train_data), eval_data is not None)
    plugin_cls = plugins.call("lathe_trainer_cls", cfg=cfg)
    hidden_loss = hidden_states_loss(cfg, plugins)
    if hidden_loss is not None and plugin_cls is not None and plugin_cls.compute_loss is not Trainer.compute_loss:
        raise LatheError(
            f"{hidden_loss.config_key or 'a hidden-states loss'} cannot be combined with the trainer "
            f"{plugin_cls.__name__} of another plugin, which computes its own loss; enable only one"
        )
    cls = trainer_class(plugin_cls)
    collator = plugins.call("lathe_collator", cfg=cfg, tokenizer=tokenizer)
    if vision is not None and collator is not None:
        raise LatheError("a plugin's collator (lathe_collator) cannot collate vision-language batches; "
                         "disable that plugin for this model")
    if collator is None:
        collator = vision.collator if vision is not None else build_collator(cfg, tokenizer)
    if cls.lathe_next_token_labels:  # type: ignore[attr-defined]
        collator = BoundaryMasking(collator)
    if str(getattr(getattr(model, "config", None), "_attn_implementation", "")).startswith("flash_attention"):
        collator = FlashVarlen(collator)
    optimizer = plugins.call("lathe_optimizer", cfg=cfg, model=model)
    custom = None if optimizer is not None else optimizer_cls_and_kwargs(cfg, model)
    callbacks: list[Any] = [NonFiniteGuard(cfg.nan_policy), GracefulInterrupt()]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    if cfg.save_first_step:
        from lathe.train.checkpoints import save_first_step_callback

        callbacks.append(save_first_step_callback())
    collect_steps = gc_intervals(cfg)[1]
    if collect_steps is not None:
        callbacks.append(GarbageCollection(collect_steps))
    if cfg.loss_watchdog_threshold is not None:
        from lathe.train.watchdog import LossWatchdog

        callbacks.append(LossWatchdog(cfg.loss_watchdog_threshold, cfg.loss_watchdog_patience))
    callbacks += plugins.call("lathe_callbacks", cfg=cfg)
    trainer = cls(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        data_collator=collator,
        processing_class=vision.processor if vision is not None else tokenizer,
        callbacks=callbacks,
        optimizers=(optimizer, None),
        optimizer_cls_and_kwargs=custom,
    )
    trainer.lathe_cfg = cfg  # type: ignore[attr-defined]
    trainer.lathe_plugins = plugins  # type: ignore[attr-defined]
    trainer.lathe_offload_activations = offload_mode(cfg)  # type: ignore[attr-defined]
    trainer.lathe_layer_offloading = cfg.layer_offloading  # type: ignore[attr-defined]
    if hidden_loss is not None:
        from lathe.hidden_loss import verify_output_head

        hidden_loss.check_model(model)
        verify_output_head(model, hidden_loss.config_key or "lathe_hidden_states_loss")
        trainer.use_hidden_states_loss(hidden_loss)  # type: ignore[attr-defined]
    return trainer


def _report_data(report: Any) -> None:
    """Before training: trainable-token share, drops by reason, EOS trained, packing (USERS.md)."""
    from lathe.distributed.ranks import say

    if report is not None:
        for line in report.lines():
            say(f"data: {line}")


def train(cfg: Config, plugins: Plugins) -> TrainResult:
    """Fine-tune the model ``cfg`` describes and save it to ``output_dir``."""
    if cfg.use_ray:  # the same function, on Ray Train's workers
        from lathe.train.ray import train_with_ray

        return train_with_ray(cfg, plugins)
    from transformers import set_seed

    from lathe.config.save import save_resolved
    from lathe.data.prepare import prepare_datasets
    from lathe.data.strategies import strategy_registry
    from lathe.data.vision import setup_vision, tokenizer_config
    from lathe.distributed import ranks
    from lathe.distributed.sharded import check_resumable
    from lathe.models.loading import load_model, model_config
    from lathe.models.tokenizer import load_tokenizer
    from lathe.models.vision import check_multimodal_keys, is_multimodal
    from lathe.report import save_run, write_report
    from lathe.train.args import evaluation_enabled
    from lathe.train.checkpoints import resume_checkpoint, save_outputs
    from lathe.train.compile import inductor_options
    from lathe.train.guards import raise_if_interrupted
    from lathe.train.hub import push_to_hub
    from lathe.train.layer_offload import check_layer_offloading
    from lathe.train.output_dir import check_output_dir

    try:
        check_layer_offloading(cfg)
        ranks.start(cfg)
        out = check_output_dir(cfg)
        with ranks.main_first():  # rank 0 clears stale staging folders before the others look
            resume = resume_checkpoint(cfg)
        check_resumable(cfg, resume, ranks.world_size())
        if ranks.is_main():
            save_resolved(cfg, out)
        set_seed(cfg.seed)
        plugins.call("lathe_pre_model_load", cfg=cfg)
        config = model_config(cfg, plugins)
        check_multimodal_keys(cfg, config)
        vision = None
        if is_multimodal(config):
            tokenizer = load_tokenizer(tokenizer_config(cfg), plugins)
            with ranks.main_first():
                vision = setup_vision(cfg, tokenizer, config, strategy_registry(plugins))
            data: Any = vision.data
        else:
            tokenizer = load_tokenizer(cfg, plugins)
            with ranks.main_first():  # rank 0 prepares and caches; the others then load the cache
                data = prepare_datasets(cfg, tokenizer, plugins)
        _report_data(data.report)
        model = load_model(cfg, tokenizer, plugins)
        trainer = build_trainer(cfg, plugins, model, tokenizer, data.train, data.eval, vision)
        plugins.call("lathe_post_trainer_create", cfg=cfg, trainer=trainer)
        with inductor_options(cfg):
            result = trainer.train(resume_from_checkpoint=resume)
        raise_if_interrupted(trainer)
        metrics = dict(result.metrics)
        if evaluation_enabled(cfg, data.eval is not None):
            metrics.update(_with_perplexity(trainer.evaluate()))
        save_outputs(trainer, cfg, tokenizer)
        plugins.call("lathe_post_train", cfg=cfg, model=trainer.model, trainer=trainer)
        if trainer.args.should_save:  # rank 0 pushes what it saved (plugins' post-processing included)
            push_to_hub(cfg, out)
            save_run(out, trainer.state.log_history, data.report)
            print(f"lathe: report: {write_report(out)}", file=sys.stderr)
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        ranks.say(f"saved to {out}")
        return TrainResult(output_dir=out, metrics=metrics, losses=losses, trainer=trainer)
    except BaseException as error:
        _report_error(cfg, plugins, error)
        raise
    finally:
        plugins.call("lathe_post_train_unload", cfg=cfg)


def _report_error(cfg: Config, plugins: Plugins, error: BaseException) -> None:
    """``lathe_run_error``; a failure there is printed and never hides the run's own error."""
    try:
        plugins.call("lathe_run_error", cfg=cfg, error=error)
    except Exception as exc:  # a reporting hook may fail in any way
        print(f"lathe: lathe_run_error failed while reporting {type(error).__name__}: {exc}", file=sys.stderr)


def _with_perplexity(metrics: dict[str, float]) -> dict[str, float]:
    loss = metrics.get("eval_loss")
    if loss is not None:
        metrics["eval_perplexity"] = math.exp(min(loss, 700.0))
    return metrics


def evaluate(cfg: Config, plugins: Plugins) -> dict[str, float]:
    """Eval loss and perplexity of the trained model in ``output_dir`` on the config's eval set."""
    from lathe.data.prepare import prepare_datasets
    from lathe.data.strategies import strategy_registry
    from lathe.data.vision import setup_vision
    from lathe.distributed import ranks
    from lathe.models.trained import load_trained
    from lathe.models.vision import is_multimodal

    try:
        ranks.start(cfg)
        model, tokenizer = load_trained(cfg, plugins)
        vision = None
        with ranks.main_first():
            if is_multimodal(model.config):
                vision = setup_vision(cfg, tokenizer, model.config, strategy_registry(plugins))
                data: Any = vision.data
            else:
                data = prepare_datasets(cfg, tokenizer, plugins)
        if data.eval is None:
            raise LatheError("evaluate needs an eval set: set val_set_size or test_datasets")
        trainer = build_trainer(cfg, plugins, model, tokenizer, data.train, data.eval, vision)
        metrics = _with_perplexity(trainer.evaluate())
    finally:
        plugins.call("lathe_post_train_unload", cfg=cfg)
    if ranks.is_main():
        print(f"eval_loss: {metrics['eval_loss']:.4f}  perplexity: {metrics['eval_perplexity']:.3f}  "
              f"({len(data.eval)} rows)")
    return metrics
