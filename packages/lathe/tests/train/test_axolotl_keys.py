"""Axolotl keys lathe reads with Axolotl's meaning: tracker switches, model_type, NEFTune,
dataloader knobs, save_first_step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from lathe.config.load import ConfigError
from lathe.errors import LatheError
from lathe.train.args import build_training_arguments, report_to, require_trackers
from tests.train.conftest import make_plugins
from tests.train.test_run import _cfg, _train


def test_use_wandb_and_use_mlflow_switch_trackers_on(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    assert report_to(_cfg(tmp_path, use_wandb=True, use_mlflow=True)) == ["wandb", "mlflow"]
    assert report_to(_cfg(tmp_path, wandb_project="p")) == ["wandb"]  # the project turns it on, as in Axolotl
    assert report_to(_cfg(tmp_path, use_wandb=False)) == ["none"]
    with pytest.raises(ConfigError, match="use_wandb: false contradicts wandb_project"):
        _cfg(tmp_path, use_wandb=False, wandb_project="p")
    with pytest.raises(ConfigError, match="use_mlflow: false contradicts mlflow_experiment_name"):
        _cfg(tmp_path, use_mlflow=False, mlflow_experiment_name="e")


def test_a_tracker_without_its_package_is_a_clear_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(LatheError, match="logging to wandb needs the wandb package: pip install wandb"):
        require_trackers(["wandb"])


def test_model_type_picks_the_class_and_refuses_non_text_ones(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import transformers

    from lathe.models.loading import model_class

    class ProbeLlamaForCausalLM(LlamaForCausalLM):
        pass

    monkeypatch.setattr(transformers, "ProbeLlamaForCausalLM", ProbeLlamaForCausalLM, raising=False)

    assert model_class(_cfg(tmp_path, model_type="LlamaForCausalLM")) is LlamaForCausalLM
    result = _train(tmp_path, model_type="ProbeLlamaForCausalLM", max_steps=1)
    assert type(result.trainer.model) is ProbeLlamaForCausalLM  # the named class, not the Auto choice
    with pytest.raises(ConfigError, match="model_type: AutoModelForSequenceClassification is not available in lathe"):
        _cfg(tmp_path, model_type="AutoModelForSequenceClassification")
    with pytest.raises(LatheError, match="has no class NoSuchForCausalLM"):
        model_class(_cfg(tmp_path, model_type="NoSuchForCausalLM"))


def test_neftune_adds_noise_to_the_embeddings_while_training(tmp_path: Path) -> None:
    from lathe.models.loading import load_model
    from lathe.testing import tiny_tokenizer
    from lathe.train.run import build_trainer

    cfg = _cfg(tmp_path, neftune_noise_alpha=5.0)
    trainer = build_trainer(cfg, make_plugins(), load_model(cfg, tiny_tokenizer(), make_plugins()), tiny_tokenizer(),
                            [{"input_ids": [1, 2]}], None)
    assert trainer.args.neftune_noise_alpha == 5.0
    plain = _train(tmp_path, max_steps=2, output_dir=str(tmp_path / "plain"))
    noisy = _train(tmp_path, max_steps=2, neftune_noise_alpha=5.0, output_dir=str(tmp_path / "noisy"))
    assert plain.losses[0] != pytest.approx(noisy.losses[0], rel=1e-6)  # the noise changes the first forward
    ids = torch.tensor([[5, 9, 17]])
    embed = noisy.trainer.model.get_input_embeddings()
    assert torch.equal(embed(ids), embed(ids))  # and the hook is removed after training


def test_dataloader_knobs_and_save_first_step(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, dataloader_drop_last=True, dataloader_num_workers=1, dataloader_prefetch_factor=3)
    args = build_training_arguments(cfg, make_plugins(), train_rows=32, has_eval=False)
    assert args.dataloader_drop_last is True and args.dataloader_prefetch_factor == 3
    with pytest.raises(ConfigError, match="dataloader_prefetch_factor needs dataloader_num_workers > 0"):
        _cfg(tmp_path, dataloader_prefetch_factor=2)
    result = _train(tmp_path, save_first_step=True, save_steps=3, max_steps=3)
    assert sorted(p.name for p in result.output_dir.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-3"]


def test_overrides_of_model_kwargs_reach_from_pretrained(tmp_path: Path) -> None:
    from lathe.models.loading import load_model
    from lathe.testing import tiny_model, tiny_tokenizer

    tok = tiny_tokenizer()
    variant_dir = tmp_path / "variant"
    tiny_model(tokenizer=tok).save_pretrained(variant_dir, variant="v1")  # model.v1.safetensors only
    tok.save_pretrained(variant_dir)
    with pytest.raises(LatheError, match="could not load weights"):
        load_model(_cfg(tmp_path, base_model=str(variant_dir)), tok, make_plugins())
    model = load_model(_cfg(tmp_path, base_model=str(variant_dir), overrides_of_model_kwargs={"variant": "v1"}),
                       tok, make_plugins())
    assert model.config.vocab_size == len(tok)
    with pytest.raises(ConfigError, match="overrides_of_model_kwargs: dtype is set by bf16 / fp16"):
        _cfg(tmp_path, overrides_of_model_kwargs={"dtype": "float16"})


def test_curriculum_sampling_trains_in_dataset_order(cfg_of) -> None:  # type: ignore[no-untyped-def]
    from tests.train.test_trainer import _rows, _trainer

    def first_ids(**overrides):  # type: ignore[no-untyped-def]
        trainer = _trainer(cfg_of(micro_batch_size=1, **overrides), _rows(8))
        return [int(batch["input_ids"][0, 0]) for batch in trainer.get_train_dataloader()]

    in_order = [row["input_ids"][0] for row in _rows(8)]
    assert first_ids(curriculum_sampling=True) == in_order
    assert first_ids() != in_order  # the default sampler shuffles
    with pytest.raises(ConfigError, match="set curriculum_sampling .* or group_by_length"):
        cfg_of(curriculum_sampling=True, group_by_length=True)


def test_auto_find_batch_size_shrinks_the_batch_on_out_of_memory(tmp_path: Path) -> None:
    from transformers import TrainerCallback

    class OutOfMemoryOnce(TrainerCallback):
        raised = False

        def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if not OutOfMemoryOnce.raised:
                OutOfMemoryOnce.raised = True
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory")  # what accelerate retries on

    from lathe.train.run import train

    plugins = make_plugins(lathe_callbacks=lambda cfg: [OutOfMemoryOnce()])
    result = train(_cfg(tmp_path, plugins, auto_find_batch_size=True, micro_batch_size=4, max_steps=1), plugins)
    assert result.trainer._train_batch_size == 3 and len(result.losses) == 1  # accelerate: 90% of 4
    OutOfMemoryOnce.raised = False
    with pytest.raises(RuntimeError, match="can't allocate memory"):
        train(_cfg(tmp_path, plugins, micro_batch_size=4, max_steps=1, output_dir=str(tmp_path / "off")), plugins)
