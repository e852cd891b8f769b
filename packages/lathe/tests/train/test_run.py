"""Whole runs through lathe.train.run.train: outputs in the HF layout that plain
transformers/peft load, adapters (frozen base, continuing), merge, inference, evaluate,
hooks, failure handling, and an Axolotl-style config."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from lathe.config import validate
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training, write_jsonl
from tests.train.conftest import make_plugins

IDS = torch.tensor([[5, 9, 17, 33, 2, 8, 40, 41]])


def _cfg(tmp_path: Path, plugins: Any = None, **overrides: Any):  # type: ignore[no-untyped-def]
    return validate(base_config(tmp_path, **overrides), plugins or Plugins(), source="<test>")


def _train(tmp_path: Path, plugins: Any = None, **overrides: Any):  # type: ignore[no-untyped-def]
    from lathe.train.run import train

    plugins = plugins or Plugins()
    return train(_cfg(tmp_path, plugins, **overrides), plugins)


def test_full_finetune_outputs_load_with_plain_transformers(tmp_path: Path) -> None:
    result = _train(tmp_path, max_steps=3)
    out = result.output_dir
    assert len(result.losses) == 3 and all(torch.isfinite(torch.tensor(result.losses)))
    assert (out / "model.safetensors").is_file() and not list(out.glob("pytorch_model*.bin"))
    saved = yaml.safe_load((out / "lathe_config.yaml").read_text())
    assert saved["lathe_version"] and saved["max_steps"] == 3
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template and tok.pad_token == "<|pad|>"
    model = AutoModelForCausalLM.from_pretrained(out)
    trained = result.trainer.model
    torch.testing.assert_close(model(IDS).logits, trained(IDS).logits)
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "model-llama")
    assert not torch.equal(base.lm_head.weight, model.lm_head.weight)


def test_lora_freezes_the_base_and_saves_a_peft_adapter(tmp_path: Path) -> None:
    base = AutoModelForCausalLM.from_pretrained(base_config(tmp_path)["base_model"])
    result = _train(tmp_path, adapter="lora", lora_target_linear=True, lora_r=4, max_steps=3)
    out = result.output_dir
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    trained = result.trainer.model
    for name, param in trained.base_model.model.named_parameters():
        if "lora_" not in name:
            clean = name.replace(".base_layer", "")
            torch.testing.assert_close(param, base.get_parameter(clean), rtol=0, atol=0, msg=name)
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "model-llama"), out)
    torch.testing.assert_close(loaded(IDS).logits, trained(IDS).logits)
    assert any(not torch.equal(p, torch.zeros_like(p)) for n, p in loaded.named_parameters() if "lora_B" in n)


def test_lora_model_dir_continues_the_saved_adapter(tmp_path: Path) -> None:
    first = _train(tmp_path, adapter="lora", lora_target_linear=True, max_steps=2)
    saved = {n: p.detach().clone() for n, p in first.trainer.model.named_parameters() if "lora_" in n}
    from lathe.models.loading import load_model
    from lathe.models.tokenizer import load_tokenizer

    cfg = _cfg(tmp_path, adapter="lora", lora_model_dir=str(first.output_dir), output_dir=str(tmp_path / "second"))
    plugins = Plugins()
    model = load_model(cfg, load_tokenizer(cfg, plugins), plugins)
    now = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert now.keys() == saved.keys()
    for name in saved:
        torch.testing.assert_close(now[name], saved[name], msg=name)
        assert now[name].requires_grad


def test_lora_model_dir_refuses_pickle_adapters_unless_allowed(tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    from lathe.models.loading import load_model
    from lathe.models.tokenizer import load_tokenizer

    first = _train(tmp_path, adapter="lora", lora_target_linear=True, max_steps=1)
    pickled = tmp_path / "pickled-adapter"
    pickled.mkdir()
    shutil.copy(first.output_dir / "adapter_config.json", pickled)
    torch.save(load_file(first.output_dir / "adapter_model.safetensors"), pickled / "adapter_model.bin")
    plugins = Plugins()
    for allow in (False, True):
        cfg = _cfg(tmp_path, adapter="lora", lora_model_dir=str(pickled), allow_pickle_weights=allow,
                   output_dir=str(tmp_path / "second"))
        if not allow:
            with pytest.raises(LatheError, match="lora_model_dir: .* only pickle adapter weights .*allow_pickle_weights"):
                load_model(cfg, load_tokenizer(cfg, plugins), plugins)
        else:
            model = load_model(cfg, load_tokenizer(cfg, plugins), plugins)
            assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


@pytest.mark.parametrize("added_tokens", [False, True])
def test_merge_lora_logits_equal_base_plus_adapter(tmp_path: Path, added_tokens: bool) -> None:
    from lathe.infer import merge_lora

    extra = {"tokens": ["<tool>", "<call>"]} if added_tokens else {}
    cfg = _cfg(tmp_path, adapter="lora", lora_target_linear=True, max_steps=3, learning_rate=1e-2, **extra)
    run_training(base_config(tmp_path, adapter="lora", lora_target_linear=True, max_steps=3,
                             learning_rate=1e-2, **extra))
    merged_dir = merge_lora(cfg, Plugins())
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    tok = AutoTokenizer.from_pretrained(merged_dir)
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "model-llama")
    base.resize_token_embeddings(len(tok))
    reference = PeftModel.from_pretrained(base, cfg.output_dir)
    ids = torch.tensor([[5, 9, 17, len(tok) - 1, 2, 8]])
    torch.testing.assert_close(merged(ids).logits, reference(ids).logits, rtol=1e-4, atol=1e-5)
    assert merged.get_input_embeddings().weight.shape[0] == len(tok)
    assert not any("lora" in n for n, _ in merged.named_parameters())


def test_inference_answers_held_out_prompt_after_learning(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every training answer is "blue"; a prompt never seen in training is answered "blue"."""
    from lathe.infer import run_inference

    rows = [{"instruction": f"Name a colour for item {i}.", "input": "", "output": "blue"} for i in range(16)]
    data = write_jsonl(rows, tmp_path / "colours.jsonl")
    overrides = dict(datasets=[{"path": str(data), "type": "alpaca"}], max_steps=30, learning_rate=3e-3)
    result = _train(tmp_path, **overrides)
    assert result.losses[-1] < 0.2 * result.losses[0]
    answers = run_inference(_cfg(tmp_path, **overrides), Plugins(), prompt="Name a colour for item 99.", max_new_tokens=4)
    assert answers == ["blue"]
    monkeypatch.setattr("sys.stdin", io.StringIO("Name a colour for item 123.\n\nexit\nnot read\n"))
    assert run_inference(_cfg(tmp_path, **overrides), Plugins(), max_new_tokens=4) == ["blue"]  # interactive

    by_plugin = make_plugins(lathe_generate=lambda cfg, model, tokenizer, prompt: f"[{prompt.count('###')}]")
    assert run_inference(_cfg(tmp_path, **overrides), by_plugin, prompt="hi") == ["[2]"]  # alpaca prompt format used


def test_evaluate_reports_loss_and_perplexity(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import math

    from lathe.train.run import evaluate

    result = _train(tmp_path, val_set_size=0.25, max_steps=2)
    metrics = evaluate(_cfg(tmp_path, val_set_size=0.25, max_steps=2), Plugins())
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    assert metrics["eval_loss"] == pytest.approx(result.metrics["eval_loss"], rel=1e-5)
    assert "perplexity" in capsys.readouterr().out


def test_hooks_fire_in_order_and_unload_runs_after_a_failure(tmp_path: Path) -> None:
    seen: list[str] = []

    def rec(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
        def hook(cfg):  # type: ignore[no-untyped-def]
            seen.append(name)
            if fail:
                raise RuntimeError("boom")
        return hook

    plugins = make_plugins(
        lathe_pre_model_load=rec("pre_model_load"),
        lathe_post_tokenizer_load=lambda cfg, tokenizer: seen.append("post_tokenizer_load"),
        lathe_post_model_build=lambda cfg, model: seen.append("post_model_build"),
        lathe_post_model_load=lambda cfg, model, tokenizer: seen.append("post_model_load"),
        lathe_training_args=lambda cfg: seen.append("training_args") or {"logging_first_step": False},
        lathe_callbacks=lambda cfg: seen.append("callbacks") or [],
        lathe_post_trainer_create=lambda cfg, trainer: seen.append("post_trainer_create"),
        lathe_post_train=lambda cfg, model: seen.append("post_train"),
        lathe_post_train_unload=rec("post_train_unload"),
    )
    _train(tmp_path, plugins, max_steps=1)
    assert seen == ["pre_model_load", "post_tokenizer_load", "post_model_build", "post_model_load", "training_args",
                    "callbacks", "post_trainer_create", "post_train", "post_train_unload"]
    seen.clear()
    failing = make_plugins(lathe_post_trainer_create=lambda cfg, trainer: 1 / 0,
                           lathe_post_train_unload=rec("post_train_unload"))
    with pytest.raises(ZeroDivisionError):
        _train(tmp_path, failing, max_steps=1, output_dir=str(tmp_path / "failed"))
    assert seen == ["post_train_unload"]


def test_plugin_trainer_class_keeps_lathe_behaviour(tmp_path: Path) -> None:
    from transformers import Trainer

    class MyTrainer(Trainer):
        pass

    result = _train(tmp_path, make_plugins(lathe_trainer_cls=lambda cfg: MyTrainer), max_steps=2, save_steps=1)
    assert isinstance(result.trainer, MyTrainer)
    assert (result.output_dir / "checkpoint-2" / "lathe_checkpoint_complete.json").is_file()  # staged saves
    assert all("tokens_per_second" in h for h in result.trainer.state.log_history if "loss" in h)


def test_non_finite_loss_stops_naming_the_step(tmp_path: Path) -> None:
    def poison(cfg, model, tokenizer):  # type: ignore[no-untyped-def]
        with torch.no_grad():
            model.lm_head.weight[0, 0] = float("nan")

    with pytest.raises(LatheError, match="non-finite loss or gradient at step 1"):
        _train(tmp_path, make_plugins(lathe_post_model_load=poison), max_steps=2)


def test_auto_resume_picks_the_newest_complete_checkpoint(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _train(tmp_path, max_steps=2, save_steps=1)
    (tmp_path / "out" / "checkpoint-2" / "lathe_checkpoint_complete.json").unlink()  # as if killed mid-save
    from transformers import TrainerCallback

    steps: list[int] = []

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            steps.append(state.global_step)

    counting = make_plugins(lathe_callbacks=lambda cfg: [Steps()])
    _train(tmp_path, counting, max_steps=3, save_steps=1, auto_resume_from_checkpoints=True)
    err = capsys.readouterr().err
    assert "resuming from" in err and "checkpoint-1" in err
    assert steps == [2, 3]


AXOLOTL_CONFIG = """
base_model: {model}
model_type: LlamaForCausalLM
tokenizer_type: AutoTokenizer
load_in_8bit: false
load_in_4bit: false
strict: false
datasets:
  - path: {data}
    type: alpaca
dataset_prepared_path: {prepared}
val_set_size: 0.1
output_dir: {out}
adapter: lora
lora_model_dir:
sequence_len: 128
sample_packing: true
pad_to_sequence_len: true
lora_r: 8
lora_alpha: 16
lora_dropout: 0.05
lora_target_linear: true
lora_fan_in_fan_out:
wandb_project:
wandb_entity:
wandb_watch:
wandb_name:
wandb_log_model:
gradient_accumulation_steps: 2
micro_batch_size: 2
num_epochs: 1
max_steps: 3
optimizer: adamw_torch
lr_scheduler: cosine
learning_rate: 0.0002
train_on_inputs: false
group_by_length: false
bf16: auto
fp16:
tf32: false
gradient_checkpointing: true
early_stopping_patience:
resume_from_checkpoint:
local_rank:
logging_steps: 1
xformers_attention:
flash_attention: false
warmup_steps: 1
evals_per_epoch: 2
saves_per_epoch: 1
debug:
deepspeed:
weight_decay: 0.0
fsdp:
fsdp_config:
special_tokens:
"""


def test_axolotl_style_config_trains_unchanged(tmp_path: Path) -> None:
    from lathe.config import load_config
    from lathe.train.run import train

    base = base_config(tmp_path)
    path = tmp_path / "axolotl.yaml"
    path.write_text(AXOLOTL_CONFIG.format(model=base["base_model"], data=base["datasets"][0]["path"],
                                          prepared=tmp_path / "prepared", out=tmp_path / "axo-out"))
    cfg, plugins = load_config(path)
    result = train(cfg, plugins)
    assert len(result.losses) == 3
    assert (tmp_path / "axo-out" / "adapter_model.safetensors").is_file()
    assert "eval_loss" in result.metrics
