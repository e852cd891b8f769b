"""TrainingArguments from the config: trackers, overrides in order, activation offloading."""

from __future__ import annotations

import pytest
import torch

from lathe.errors import LatheError
from lathe.train.args import build_training_arguments, report_to
from tests.train.conftest import make_plugins


def test_trackers_from_config(cfg_of, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for var in ("WANDB_PROJECT", "WANDB_ENTITY", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    assert report_to(cfg_of()) == ["none"]
    cfg = cfg_of(use_tensorboard=True, wandb_project="proj", wandb_entity="team", mlflow_experiment_name="exp")
    assert report_to(cfg) == ["tensorboard", "wandb", "mlflow"]
    import os

    assert (os.environ["WANDB_PROJECT"], os.environ["WANDB_ENTITY"], os.environ["MLFLOW_EXPERIMENT_NAME"]) == (
        "proj", "team", "exp")


def test_extra_args_then_plugin_overrides(cfg_of) -> None:  # type: ignore[no-untyped-def]
    cfg = cfg_of(training_args_extra={"dataloader_drop_last": True, "logging_first_step": False})
    args = build_training_arguments(cfg, make_plugins(lathe_training_args=lambda cfg: {"logging_first_step": True}),
                                    train_rows=32, has_eval=False)
    assert args.dataloader_drop_last is True and args.logging_first_step is True
    assert args.per_device_train_batch_size == 4 and args.max_steps == 4 and args.learning_rate == 1e-3
    with pytest.raises(LatheError, match="training_args_extra: .*not_an_arg"):
        build_training_arguments(cfg_of(training_args_extra={"not_an_arg": 1}), make_plugins(), 32, False)


def test_activation_offloading_wraps_the_step_and_keeps_the_loss(cfg_of, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.train.test_trainer import _rows, _trainer

    entered: list[bool] = []
    real = torch.autograd.graph.save_on_cpu

    def spy(pin_memory: bool = False):  # type: ignore[no-untyped-def]
        entered.append(pin_memory)
        return real(pin_memory=pin_memory)

    monkeypatch.setattr(torch.autograd.graph, "save_on_cpu", spy)
    losses = []
    for offload in (False, "legacy"):
        trainer = _trainer(cfg_of(max_steps=2, activation_offloading=offload), _rows(8))
        trainer.train()
        losses.append([h["loss"] for h in trainer.state.log_history if "loss" in h])
    pinned = torch.cuda.is_available()  # pinned host memory only where there is a CUDA device
    assert entered == [pinned, pinned]  # two steps offloaded, none without the key
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert cfg_of(gradient_checkpointing="offload").gradient_checkpointing == "offload"


def test_bf16_true_builds_on_any_machine_and_auto_follows_the_hardware(cfg_of) -> None:  # type: ignore[no-untyped-def]
    args = build_training_arguments(cfg_of(bf16=True), make_plugins(), train_rows=32, has_eval=False)
    assert args.bf16 and not args.fp16
    accelerator = torch.cuda.is_available() or torch.backends.mps.is_available()
    assert args.use_cpu == (not accelerator)  # bf16 on a CPU-only machine: autocast on the CPU
    bf16_here = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    assert build_training_arguments(cfg_of(bf16="auto"), make_plugins(), 32, False).bf16 == bf16_here
    pin = build_training_arguments(cfg_of(), make_plugins(), 32, False).dataloader_pin_memory
    assert pin == torch.cuda.is_available()
