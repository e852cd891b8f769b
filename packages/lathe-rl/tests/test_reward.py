"""Reward models (reward_model: true, Bradley–Terry) and process reward models
(process_reward_model: true, stepwise_supervised): losses by hand, labels where expected,
training that ranks held-out pairs, LoRA heads saved and reloaded."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file

from lathe.config import ConfigError, validate
from lathe.data.strategies import IGNORE, build_strategy, strategy_registry
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training, tiny_tokenizer, write_jsonl
from lathe_rl.reward import ProcessRewardTrainer, RewardTrainer
from lathe_rl.trainer import Settings

GOOD, BAD = ["red", "green", "blue", "apple", "bread", "cloud"], ["cat", "dog", "bird", "tree", "river", "stone"]


def bt_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Separable pairs: the chosen reply names things from GOOD, the rejected one from BAD."""
    rng = random.Random(seed)
    return [{"input": f"Name two things ({i}).", "chosen": " ".join(rng.sample(GOOD, 2)),
             "rejected": " ".join(rng.sample(BAD, 2))} for i in range(n)]


def reward_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Axolotl's way: reward_model: true and no plugins: line."""
    train, held_out = tmp_path / "data" / "bt.jsonl", tmp_path / "data" / "bt_test.jsonl"
    write_jsonl(bt_rows(32, 0), train)
    write_jsonl(bt_rows(16, 1), held_out)
    cfg = base_config(tmp_path, reward_model=True, chat_template="chatml", sequence_len=64, max_steps=12,
                      learning_rate=5e-3, datasets=[{"path": str(train), "type": "bradley_terry.chat_template"}],
                      test_datasets=[{"path": str(held_out), "type": "bradley_terry.chat_template"}])
    cfg.update(overrides)
    return cfg


STEPS = [{"prompt": "2+2?", "completions": ["two plus two", "is four"], "labels": [True, False]},
         {"prompt": "3+1?", "completions": ["three and one", "make four", "done"], "labels": [1, 1, 0]}]


def prm_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    data = tmp_path / "data" / "steps.jsonl"
    write_jsonl(STEPS * 8, data)
    cfg = base_config(tmp_path, process_reward_model=True, sequence_len=64, max_steps=3,
                      datasets=[{"path": str(data), "type": "stepwise_supervised"}])
    cfg.update(overrides)
    return cfg


def _fake_trainer(**settings: Any) -> Any:
    """What preference_loss reads of its trainer."""
    return SimpleNamespace(settings=Settings(method="reward", beta=0.1, **settings))


def test_bradley_terry_loss_equals_a_hand_computation() -> None:
    scores = torch.tensor([[1.0], [0.5], [0.0], [2.0]])  # chosen 1.0, 0.5; rejected 0.0, 2.0
    model = lambda **_: SimpleNamespace(logits=scores)  # noqa: E731
    batch = {"input_ids": torch.zeros(4, 3, dtype=torch.long), "attention_mask": torch.ones(4, 3)}
    for center in (0.0, 0.01):
        me = _fake_trainer(center_rewards=center)
        loss, metrics = RewardTrainer.preference_loss(me, model, batch)
        by_hand = (math.log(1 + math.exp(-1.0)) + center * 1.0 + math.log(1 + math.exp(1.5)) + center * 2.5**2) / 2
        assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    assert metrics["rewards/accuracies"].tolist() == [1.0, 0.0]


def test_process_reward_loss_is_cross_entropy_on_the_labelled_tokens() -> None:
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [0.0, 2.0]]])
    labels = torch.tensor([[IGNORE, 1, 0]])
    model = lambda **_: SimpleNamespace(logits=logits)  # noqa: E731
    batch = {"input_ids": torch.zeros(1, 3, dtype=torch.long), "attention_mask": torch.ones(1, 3), "labels": labels}
    loss, metrics = ProcessRewardTrainer.preference_loss(_fake_trainer(), model, batch)
    by_hand = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(2.0))) / 2  # -log softmax([0,1])[1], [0,2][0]
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    assert metrics["accuracy"].tolist() == [1.0, 0.0]


def test_reward_model_without_plugins_line_ranks_held_out_pairs(tmp_path: Path) -> None:
    result = run_training(reward_config(tmp_path))
    before = [h["rewards/accuracies"] for h in result.trainer.state.log_history if "rewards/accuracies" in h]
    held_out = result.trainer.evaluate()
    print(f"reward model toy: held-out accuracy {held_out['eval_rewards/accuracies']:.2f}, margin "
          f"{held_out['eval_rewards/margins']:.3f} (first step's training accuracy {before[0]:.2f})")
    assert held_out["eval_rewards/accuracies"] >= 0.9 and held_out["eval_rewards/margins"] > 0
    from transformers import AutoModelForSequenceClassification

    saved = AutoModelForSequenceClassification.from_pretrained(result.output_dir)
    assert saved.config.num_labels == 1 and type(saved).__name__ == "LlamaForSequenceClassification"
    from lathe.infer import run_inference  # a reward model scores what lathe inference is given

    text = "<|im_start|>user\nName two things (0).<|im_end|>\n<|im_start|>assistant\nred blue<|im_end|>"
    cfg = reward_config(tmp_path)
    plugins = Plugins.load(["rl"])
    answer = run_inference(validate(cfg, plugins), plugins, prompt=text)
    with torch.no_grad():
        expected = saved(**tiny_tokenizer()(text, return_tensors="pt", add_special_tokens=False)).logits[0, 0]
    assert answer == [f"reward: {expected.item():.4f}"]


def test_lora_reward_model_trains_saves_and_merges_its_head_and_keeps_the_base(tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    cfg = reward_config(tmp_path, adapter="lora", lora_r=4, lora_alpha=8, lora_target_linear=True, max_steps=3,
                        test_datasets=None)
    base = load_file(Path(cfg["base_model"]) / "model.safetensors")
    result = run_training(cfg)
    trained = result.trainer.model
    state = {k.replace("base_model.model.", "").replace(".base_layer", ""): v for k, v in trained.state_dict().items()}
    for name, weight in base.items():  # every base weight (lm_head is not part of the classifier)
        if name in state:
            assert torch.equal(state[name], weight), name
    head = trained.base_model.model.score
    assert head.modules_to_save["default"].weight.requires_grad
    assert not torch.equal(head.modules_to_save["default"].weight, head.original_module.weight)
    saved = load_file(result.output_dir / "adapter_model.safetensors")
    assert any("score" in k for k in saved)
    reloaded = PeftModel.from_pretrained(
        AutoModelForSequenceClassification.from_pretrained(cfg["base_model"], num_labels=1), result.output_dir)
    ids = torch.tensor([[5, 6, 7, 2]])
    trained.eval()
    with torch.no_grad():
        expected = trained(input_ids=ids).logits
        assert torch.allclose(reloaded(input_ids=ids).logits, expected, atol=1e-5)

    # `lathe merge-lora` writes a plain sequence-classification model with the trained head
    from click.testing import CliRunner

    from lathe.cli.commands import cli

    path = tmp_path / "reward.yml"
    path.write_text(yaml.safe_dump(cfg))
    merge = CliRunner().invoke(cli, ["merge-lora", str(path)])
    assert merge.exit_code == 0, merge.output
    merged = AutoModelForSequenceClassification.from_pretrained(result.output_dir / "merged")
    assert merged.config.num_labels == 1
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-5)


def test_stepwise_labels_sit_on_the_last_token_of_each_step(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    plugins = Plugins.load(["rl"])
    cfg = validate(prm_config(tmp_path, plugins=["rl"]), plugins)
    strategy = build_strategy(cfg.datasets[0], "datasets[0]", cfg, tok, strategy_registry(plugins))
    out = strategy.tokenize(STEPS[1])
    ends, length = [], len(tok("3+1?", add_special_tokens=False)["input_ids"])
    for step in STEPS[1]["completions"]:
        length += len(tok(step, add_special_tokens=False)["input_ids"]) + len(tok("\n", add_special_tokens=False)["input_ids"])
        ends.append(length - 1)
    assert out["input_ids"] == tok("3+1?three and one\nmake four\ndone\n", add_special_tokens=False)["input_ids"]
    assert [i for i, lab in enumerate(out["labels"]) if lab != IGNORE] == ends
    assert [out["labels"][i] for i in ends] == [1, 1, 0]
    import warnings

    from lathe.data.prepare import prepare_datasets

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no EOS is trained" warning: labels here are classes, not tokens
        prepare_datasets(cfg, tok, plugins)


def test_preprocess_debug_shows_the_step_labels(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lathe.cli.commands import cli

    path = tmp_path / "prm.yml"
    path.write_text(yaml.safe_dump(prm_config(tmp_path)))
    result = CliRunner().invoke(cli, ["preprocess", str(path), "--debug"])
    assert result.exit_code == 0, result.output
    newline = tiny_tokenizer()("\n", add_special_tokens=False)["input_ids"][-1]
    assert f"[['\\n'={newline}→1]]" in result.output and f"[['\\n'={newline}→0]]" in result.output


def test_process_reward_model_trains_and_reloads(tmp_path: Path) -> None:
    from transformers import AutoModelForTokenClassification

    result = run_training(prm_config(tmp_path, adapter="lora", lora_r=4, lora_alpha=8, lora_target_linear=True))
    losses = [h["loss"] for h in result.trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    from peft import PeftModel

    base = AutoModelForTokenClassification.from_pretrained(tmp_path / "model-llama", num_labels=2)
    reloaded = PeftModel.from_pretrained(base, result.output_dir)
    assert reloaded(input_ids=torch.tensor([[5, 6]])).logits.shape == (1, 2, 2)
    from lathe.infer import run_inference

    plugins = Plugins.load(["rl"])
    cfg = validate(prm_config(tmp_path, adapter="lora", lora_r=4, lora_alpha=8, lora_target_linear=True), plugins)
    (answer,) = run_inference(cfg, plugins, prompt="3+1?three and one\nmake four\n")
    assert re.fullmatch(r"step labels: [01] \(p=0\.\d+\), [01] \(p=0\.\d+\)", answer), answer


@pytest.mark.parametrize(("row", "message"), [
    ({"prompt": "p", "completions": ["a", "b"], "labels": [True]}, "field 'labels': 1 labels for 2 completions"),
    ({"prompt": "p", "completions": [], "labels": []}, "field 'completions': expected a non-empty list"),
    ({"prompt": "p", "completions": ["a"], "labels": [2]}, r"field 'labels': step 0 has label 2; .*num_labels: 2"),
])
def test_bad_stepwise_rows_are_named(tmp_path: Path, row: dict[str, Any], message: str) -> None:
    plugins = Plugins.load(["rl"])
    cfg = validate(prm_config(tmp_path, plugins=["rl"]), plugins)
    strategy = build_strategy(cfg.datasets[0], "datasets[0]", cfg, tiny_tokenizer(), strategy_registry(plugins))
    with pytest.raises(LatheError, match=message):
        strategy.tokenize(row)


def test_bad_bradley_terry_rows_are_named(tmp_path: Path) -> None:
    data = tmp_path / "data" / "bad.jsonl"
    write_jsonl([*bt_rows(3, 0), {"input": "q", "chosen": "same", "rejected": "same"}], data)
    cfg = reward_config(tmp_path, datasets=[{"path": str(data), "type": "bradley_terry.chat_template"}],
                        test_datasets=None)
    with pytest.raises(LatheError, match="chosen and rejected are identical"):
        run_training(cfg)


@pytest.mark.parametrize(("keys", "message"), [
    ({"rl": "dpo"}, "reward_model: rl: dpo and reward_model: true ask for two trainings at once"),
    ({"num_labels": 3}, "num_labels: reward_model scores each conversation with one number"),
    ({"rl_beta": 0.2}, r"rl_beta: only read with rl: .* \(reward_model is true\)"),
    ({"model_type": "AutoModelForCausalLM"}, None),
])
def test_bad_reward_settings_are_named(tmp_path: Path, keys: dict[str, Any], message: str | None) -> None:
    cfg = reward_config(tmp_path, plugins=["rl"], **keys)
    if message is None:  # model_type and the reward head: refused when the model is built
        with pytest.raises(LatheError, match="model_type: AutoModelForCausalLM is set, but this run builds "
                                             "AutoModelForSequenceClassification"):
            run_training(cfg)
        return
    with pytest.raises(ConfigError, match=message):
        validate(cfg, Plugins.load(["rl"]))


def test_reward_keys_without_a_reward_model_are_refused(tmp_path: Path) -> None:
    cfg = prm_config(tmp_path, plugins=["rl"], center_rewards_coefficient=0.01)
    with pytest.raises(ConfigError, match=r"center_rewards_coefficient: only read with reward_model: true "
                                          r"\(process_reward_model is true\)"):
        validate(cfg, Plugins.load(["rl"]))
