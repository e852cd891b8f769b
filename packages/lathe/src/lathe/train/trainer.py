"""lathe's behaviour on top of a ``transformers.Trainer`` (lathe's own, or the one a plugin
answers with ``lathe_trainer_cls``): token throughput, activation offloading, the
scheduler hook and staged checkpoints.

Loss normalisation: the Trainer counts the trained tokens (labels ≠ −100, after the
causal shift) over every micro-batch of one optimizer step and passes that count to
the model's loss as ``num_items_in_batch``, so each micro-batch contributes
``sum of token losses / trained tokens of the whole accumulated batch``. The loss
and gradients are then the same for 4 micro-batches of 1 as for 1 micro-batch of 4.
A plugin's hidden-states loss (``lathe_hidden_states_loss``) gets the same count and
divides by it, so this holds for Cut Cross Entropy, Liger's fused loss and KD too.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import ProcessorMixin, Trainer
from transformers.trainer import TRAINING_ARGS_NAME

from lathe.data.collate import pad_id_of
from lathe.metrics import StepMetrics
from lathe.train.checkpoints import reload_converted_weights, write_checkpoint
from lathe.train.layer_offload import CudaMover, LayerOffloader, decoder_layers
from lathe.train.offload import offloading
from lathe.train.plugin_state import load_plugin_state, save_plugin_state

if TYPE_CHECKING:
    from lathe.config import Config
    from lathe.hidden_loss import HiddenStatesLoss
    from lathe.plugins import Plugins


def _packed_padding(ids: torch.Tensor, positions: torch.Tensor, pad_id: int) -> int:
    """Padding tokens of a packed batch: per row, the trailing segment (from its last
    ``position_ids == 0``) when it is made only of ``pad_id`` (the collator's padding)."""
    padding = 0
    for row_ids, row_pos in zip(ids, positions, strict=True):
        starts = (row_pos == 0).nonzero()
        if len(starts) > 1:
            tail = row_ids[int(starts[-1]) :]
            if bool((tail == pad_id).all()):
                padding += len(tail)
    return padding


def count_tokens(inputs: dict[str, Any], pad_id: int | None = None) -> tuple[int, int]:
    """(all real tokens, trained tokens) of one micro-batch; padding is not a token.

    Unpacked batches say which tokens are real in ``attention_mask``; packed ones have none
    (transformers reads the boundaries from ``position_ids``), so their padding is found
    as the trailing run of ``pad_id`` that the collator appends as its own segment.
    """
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    positions = inputs.get("position_ids")
    if mask is not None and mask.dim() == 2:
        total = int(mask.sum())
    elif positions is not None and pad_id is not None and positions.shape == ids.shape:
        total = ids.numel() - _packed_padding(ids, positions, pad_id)
    else:
        total = ids.numel()
    labels = inputs.get("labels")
    trained = int((labels[..., 1:] != -100).sum()) if labels is not None else total
    return total, trained


class LatheTrainerMixin:
    """Mixed in front of the chosen Trainer class (see :func:`trainer_class`)."""

    lathe_cfg: Config
    lathe_plugins: Plugins
    #: The label at position i is the target of position i − 1 (a causal LM's shifted loss).
    #: Then the run's collator masks the label at every packed-sequence start (see
    #: :class:`lathe.data.collate.BoundaryMasking`). A plugin trainer whose targets are not
    #: shifted (a diffusion LM predicts each token at its own position) sets it to False.
    lathe_next_token_labels: bool = True
    lathe_staging_dir: str | None = None
    lathe_offload_activations: str | None = None  # a mode of lathe.train.offload
    lathe_layer_offloading: bool = False  # layer_offloading: built on the first step (the model is on the GPU then)
    _lathe_layers: LayerOffloader | None = None
    lathe_hidden_loss: HiddenStatesLoss | None = None
    lathe_metrics: StepMetrics  # the hidden-states loss's metrics, averaged into each log line

    def _lathe_counters(self) -> dict[str, float]:
        if not hasattr(self, "_lathe_tokens"):
            self._lathe_tokens = {"all": 0.0, "trained": 0.0, "since": time.perf_counter()}
        return self._lathe_tokens

    def training_step(self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        counters = self._lathe_counters()
        tokenizer = getattr(self, "processing_class", None)
        if isinstance(tokenizer, ProcessorMixin):  # a vision-language processor: its own tokenizer
            tokenizer = tokenizer.tokenizer
        total, trained = count_tokens(inputs, pad_id_of(tokenizer) if tokenizer is not None else None)
        counters["all"] += total
        counters["trained"] += trained
        if self.lathe_layer_offloading and self._lathe_layers is None:
            self._lathe_layers = LayerOffloader(decoder_layers(model), CudaMover(self.args.device))  # type: ignore[attr-defined]
        with offloading(self.lathe_offload_activations), self._lathe_layers or contextlib.nullcontext():
            return super().training_step(model, inputs, num_items_in_batch)  # type: ignore[misc]

    def use_hidden_states_loss(self, loss: HiddenStatesLoss) -> None:
        """Compute the training and evaluation loss with ``loss`` from the final hidden states."""
        self.lathe_hidden_loss = loss
        self.model_accepts_loss_kwargs = True  # the Trainer then counts the accumulated batch's tokens
        self.lathe_metrics = StepMetrics()

    def compute_loss(
        self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        loss_fn = self.lathe_hidden_loss
        if loss_fn is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)  # type: ignore[misc]
        from lathe.hidden_loss import final_hidden_states, output_head

        skip = {"labels", *loss_fn.batch_keys}
        hidden = final_hidden_states(model, {k: v for k, v in inputs.items() if k not in skip})
        head = output_head(self.accelerator.unwrap_model(model))  # type: ignore[attr-defined]
        counted = num_items_in_batch  # None in evaluation: each batch is then normalised by its own tokens
        answer = loss_fn(hidden, head, inputs["labels"], counted, inputs)
        loss, metrics = answer if isinstance(answer, tuple) else (answer, {})
        split = "train" if model.training else "eval"
        for name, value in metrics.items():
            self.lathe_metrics.add(split, name, float(value))
        args = self.args  # type: ignore[attr-defined]
        if args.average_tokens_across_devices and counted is not None:
            # every rank divided by the token count of all ranks; DDP averages the gradients
            loss = loss * self.accelerator.num_processes  # type: ignore[attr-defined]
        return (loss, {"loss": loss}) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.lathe_hidden_loss is not None:
            self.lathe_metrics.flush_into(logs)
        if "loss" in logs:
            counters = self._lathe_counters()
            now = time.perf_counter()
            elapsed = max(now - counters["since"], 1e-9)
            logs["tokens_per_second"] = round(counters["all"] / elapsed, 1)
            logs["trained_tokens_per_second"] = round(counters["trained"] / elapsed, 1)
            counters.update(all=0.0, trained=0.0, since=now)
        super().log(logs, start_time)  # type: ignore[misc]

    def create_optimizer(self, model: torch.nn.Module | None = None) -> Any:
        """Axolotl's per-group learning rates (embedding_lr, lr_groups, LoRA+) when the config asks."""
        from lathe.train.param_groups import build_grouped_optimizer, needs_custom_groups

        if self.optimizer is not None or not needs_custom_groups(self.lathe_cfg):  # type: ignore[has-type]
            return super().create_optimizer(model)  # type: ignore[misc]
        opt_model = model if model is not None else self.model  # type: ignore[attr-defined]
        custom = self.optimizer_cls_and_kwargs  # type: ignore[attr-defined]
        cls, kwargs = custom if custom is not None else self.get_optimizer_cls_and_kwargs(self.args, opt_model)  # type: ignore[attr-defined]
        decay = set(self.get_decay_parameter_names(opt_model))  # type: ignore[attr-defined]
        self.optimizer = build_grouped_optimizer(self.lathe_cfg, opt_model, cls, kwargs, decay)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> Any:
        if self.lr_scheduler is None:  # type: ignore[has-type]
            answer = self.lathe_plugins.call(
                "lathe_lr_scheduler",
                cfg=self.lathe_cfg,
                optimizer=optimizer if optimizer is not None else self.optimizer,  # type: ignore[attr-defined]
                num_training_steps=num_training_steps,
            )
            if answer is None:
                from lathe.train.schedulers import build_scheduler

                answer = build_scheduler(
                    self.lathe_cfg,
                    optimizer if optimizer is not None else self.optimizer,  # type: ignore[attr-defined]
                    num_training_steps,
                    self.args.get_warmup_steps(num_training_steps),  # type: ignore[attr-defined]
                )
            if answer is not None:
                self.lr_scheduler = answer
        return super().create_scheduler(num_training_steps, optimizer)  # type: ignore[misc]

    def create_accelerator_and_postprocess(self) -> None:
        from lathe.distributed.engine import enable_fsdp_on_cpu

        super().create_accelerator_and_postprocess()  # type: ignore[misc]
        enable_fsdp_on_cpu(self)

    def _get_output_dir(self, trial: Any) -> str:
        if self.lathe_staging_dir is not None:
            return self.lathe_staging_dir
        return super()._get_output_dir(trial)  # type: ignore[misc,no-any-return]

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Under FSDP with full state dicts: gathered by torch's API (accelerate would hand the
        FSDP2 DTensor shards to ``save_pretrained``)."""
        if self.is_fsdp_enabled and "FULL_STATE_DICT" in str(self.accelerator.state.fsdp_plugin.state_dict_type):  # type: ignore[attr-defined]
            from lathe.distributed.sharded import save_full

            save_full(self, Path(output_dir or self.args.output_dir))  # type: ignore[attr-defined]
            return
        super().save_model(output_dir, _internal_call)  # type: ignore[misc]

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        """The Trainer's save, without ``training_args.bin``: that pickle of every argument
        would carry secrets (``hub_token``, tokens passed through ``training_args_extra``)
        into each checkpoint and the output. Nothing lathe or transformers resumes reads it;
        the resolved config (secrets redacted) is saved as ``lathe_config.yaml`` instead."""
        super()._save(output_dir, state_dict)  # type: ignore[misc]
        folder = output_dir if output_dir is not None else self.args.output_dir  # type: ignore[attr-defined]
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, TRAINING_ARGS_NAME))

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        step = self.state.global_step  # type: ignore[attr-defined]

        def save() -> None:
            super(LatheTrainerMixin, self)._save_checkpoint(model, trial)  # type: ignore[misc]
            if self.args.should_save:  # type: ignore[attr-defined]
                folder = Path(self._get_output_dir(trial)) / f"checkpoint-{step}"
                save_plugin_state(self, folder)  # type: ignore[arg-type]
                if self.is_fsdp_enabled and not (folder / "config.json").exists():  # type: ignore[attr-defined]
                    # sharded weights: the model's config makes the checkpoint mergeable on its own
                    self.accelerator.unwrap_model(model).config.save_pretrained(str(folder))  # type: ignore[attr-defined]

        write_checkpoint(self, step, save)  # type: ignore[arg-type]

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)  # type: ignore[misc]
        if not (self.is_deepspeed_enabled or self.is_fsdp_enabled):  # type: ignore[attr-defined]
            target = model if model is not None else self.model  # type: ignore[attr-defined]
            reload_converted_weights(target, Path(resume_from_checkpoint))

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any) -> Any:
        """Training; when resuming from a checkpoint folder, plugins' state is restored first."""
        if isinstance(resume_from_checkpoint, str):
            load_plugin_state(self, Path(resume_from_checkpoint))  # type: ignore[arg-type]
        try:
            return super().train(resume_from_checkpoint, *args, **kwargs)  # type: ignore[misc]
        finally:
            if self._lathe_layers is not None:  # every parameter back on the GPU for what follows
                self._lathe_layers.close()
                self._lathe_layers = None


class LatheTrainer(LatheTrainerMixin, Trainer):
    """lathe's trainer when no plugin supplies one."""


def trainer_class(plugin_cls: type[Trainer] | None) -> type[Trainer]:
    """lathe's trainer, or the plugin's class with lathe's behaviour mixed in front."""
    if plugin_cls is None:
        return LatheTrainer
    if issubclass(plugin_cls, LatheTrainerMixin):
        return plugin_cls
    own = {"lathe_next_token_labels": getattr(plugin_cls, "lathe_next_token_labels", True)}
    return type(f"Lathe{plugin_cls.__name__}", (LatheTrainerMixin, plugin_cls), own)
