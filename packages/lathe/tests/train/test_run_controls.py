"""Axolotl's run controls through whole runs: evaluation off (eval_steps/evals_per_epoch: 0,
eval_strategy: no), save_strategy, save_only_model, loss watchdog, unfrozen_parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from lathe.config.load import ConfigError
from lathe.errors import LatheError
from lathe.testing import base_config
from lathe.train.watchdog import LossWatchdog, LossWatchdogError
from tests.train.test_run import _cfg, _train


def _evals(result) -> list[int]:  # type: ignore[no-untyped-def]
    return [h["step"] for h in result.trainer.state.log_history if "eval_loss" in h]


@pytest.mark.parametrize("off", [{"eval_steps": 0}, {"evals_per_epoch": 0}, {"eval_strategy": "no"}])
def test_zero_eval_settings_mean_no_evaluation(tmp_path: Path, off: dict) -> None:  # type: ignore[type-arg]
    result = _train(tmp_path, val_set_size=0.25, max_steps=2, **off)
    assert _evals(result) == [] and "eval_loss" not in result.metrics


def test_eval_strategy_epoch_and_default_final_eval(tmp_path: Path) -> None:
    result = _train(tmp_path, val_set_size=0.25, eval_strategy="epoch", max_steps=None, num_epochs=1, micro_batch_size=8)
    assert _evals(result)[0] == 3  # 24 training rows / 8 = 3 steps: one eval at the epoch end (+ the final one)
    assert "eval_loss" in result.metrics


def test_evals_per_epoch_without_eval_set_warns_eval_steps_fails(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="evals_per_epoch is set but there is no eval set"):
        _cfg(tmp_path, evals_per_epoch=4)
    with pytest.raises(ConfigError, match="eval_steps/eval_strategy need an eval set"):
        _cfg(tmp_path, eval_steps=2)
    with pytest.raises(ConfigError, match="eval_strategy: epoch contradicts eval_steps"):
        _cfg(tmp_path, val_set_size=0.25, eval_steps=2, eval_strategy="epoch")


def test_save_strategy_no_writes_no_checkpoints_but_the_final_model(tmp_path: Path) -> None:
    result = _train(tmp_path, save_strategy="no", max_steps=2)
    assert not list(result.output_dir.glob("checkpoint-*"))
    assert (result.output_dir / "model.safetensors").is_file()


def test_save_only_model_checkpoints_hold_weights_only_and_are_not_resumed(tmp_path: Path) -> None:
    result = _train(tmp_path, save_only_model=True, save_steps=1, save_total_limit=1, max_steps=2)
    checkpoints = sorted(result.output_dir.glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == ["checkpoint-2"]  # save_total_limit through the staged writer
    assert (checkpoints[0] / "model.safetensors").is_file() and not list(checkpoints[0].glob("optimizer*"))
    with pytest.raises(ConfigError, match="save_only_model: checkpoints without optimizer state cannot be resumed"):
        _cfg(tmp_path, save_only_model=True, auto_resume_from_checkpoints=True)
    with pytest.raises(LatheError, match="holds no optimizer state"):
        _train(tmp_path, resume_from_checkpoint=str(checkpoints[0]), output_dir=str(tmp_path / "again"))


def test_loss_watchdog_stops_the_run_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    # the tiny model's loss is ~6: above 0.5 at every step; patience 2 → stops while logging step 2
    with pytest.raises(LossWatchdogError, match="above loss_watchdog_threshold \\(0.5\\) for 2 logged steps") as info:
        _train(tmp_path, loss_watchdog_threshold=0.5, loss_watchdog_patience=2, save_steps=1, max_steps=4)
    assert info.value.exit_code != 0
    out = Path(base_config(tmp_path)["output_dir"])
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    assert not (out / "model.safetensors").exists()
    assert len(_train(tmp_path, loss_watchdog_threshold=100.0, max_steps=2, output_dir=str(tmp_path / "fine")).losses) == 2


def test_loss_watchdog_counts_consecutive_logs_only() -> None:
    class Args:
        output_dir = "out"

    class State:
        global_step = 1

    dog = LossWatchdog(threshold=1.0)  # patience defaults to 3, as Axolotl
    for loss in (2.0, 2.0, 0.5, 2.0, 2.0, {"eval_loss": 9.0}):
        dog.on_log(Args(), State(), None, logs=loss if isinstance(loss, dict) else {"loss": loss})
    with pytest.raises(LossWatchdogError):
        dog.on_log(Args(), State(), None, logs={"loss": 3.0})


def test_unfrozen_parameters_train_only_what_matches(tmp_path: Path) -> None:
    base = AutoModelForCausalLM.from_pretrained(base_config(tmp_path)["base_model"])
    result = _train(tmp_path, max_steps=2, weight_decay=0.0,
                    unfrozen_parameters=["^model.layers.0.mlp.*", "model.embed_tokens.weight[5:10]"])
    after = dict(result.trainer.model.named_parameters())
    for name, before in base.named_parameters():
        now = after[name].detach()
        if name.startswith("model.layers.0.mlp."):
            assert not torch.equal(now, before), name
        elif name == "model.embed_tokens.weight":
            assert torch.equal(now[:5], before[:5]) and torch.equal(now[10:], before[10:])
            assert not torch.equal(now[5:10], before[5:10])
        else:
            assert torch.equal(now, before), name  # bit-identical
    with pytest.raises(LatheError, match="no parameter name matches"):
        _train(tmp_path, unfrozen_parameters=["^nothing$"], output_dir=str(tmp_path / "x"))
    with pytest.raises(LatheError, match="row ranges .* need weight_decay: 0"):
        _train(tmp_path, unfrozen_parameters=["model.embed_tokens.weight[0:4]"], weight_decay=0.1,
               output_dir=str(tmp_path / "y"))


def test_best_model_keys(tmp_path: Path) -> None:
    common = dict(val_set_size=0.25, eval_steps=1, max_steps=3, metric_for_best_model="eval_loss")
    # greater_is_better: true makes the first (highest) eval loss the best: the run ends on checkpoint-1's weights
    result = _train(tmp_path, save_steps=1, load_best_model_at_end=True, greater_is_better=True, **common)
    best = result.trainer.state.best_model_checkpoint
    assert best is not None and best.endswith("checkpoint-1")
    reference = AutoModelForCausalLM.from_pretrained(best)
    for name, param in reference.named_parameters():
        assert torch.equal(param, dict(result.trainer.model.named_parameters())[name]), name
    # save_strategy: best saves only when the metric improves (never again after step 1 here)
    result = _train(tmp_path, save_strategy="best", greater_is_better=True, output_dir=str(tmp_path / "best"), **common)
    assert sorted(p.name for p in result.output_dir.glob("checkpoint-*")) == ["checkpoint-1"]
    with pytest.raises(ConfigError, match="save_strategy: best needs metric_for_best_model"):
        _cfg(tmp_path, save_strategy="best", val_set_size=0.25)
    with pytest.raises(ConfigError, match="metric_for_best_model/greater_is_better are read only with"):
        _cfg(tmp_path, metric_for_best_model="eval_loss")
    with pytest.raises(LatheError, match="load_best_model_at_end needs evaluation"):
        _train(tmp_path, load_best_model_at_end=True, output_dir=str(tmp_path / "noeval"))
