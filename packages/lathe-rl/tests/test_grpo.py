"""GRPO: rewards by name from a file next to where lathe runs, in-process generation, and a toy
task whose mean reward rises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lathe.config import ConfigError, validate
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training, write_jsonl

REWARDS = '''
def early_letter(prompts, completions, answer, **kwargs):
    """1 when the completion starts with a letter a-m (the row's answer column reaches here)."""
    assert len(answer) == len(completions) == len(prompts)
    return [1.0 if c[:1].lower() in "abcdefghijklm" and c[:1].isalpha() else 0.0 for c in completions]
'''


def _grpo_config(tmp_path: Path, **trl: object) -> dict[str, object]:
    data = tmp_path / "prompts.jsonl"
    write_jsonl([{"prompt": f"Say a word ({i}):", "answer": "red"} for i in range(32)], data)
    (tmp_path / "rewards.py").write_text(REWARDS)
    block = {"num_generations": 8, "max_completion_length": 3, "reward_funcs": ["rewards.early_letter"],
             "temperature": 1.0, **trl}
    return base_config(tmp_path, plugins=["rl"], rl="grpo", trl=block, max_steps=10, micro_batch_size=4,
                       learning_rate=2e-2, datasets=[{"path": str(data), "type": "grpo.chat_template"}])


def test_grpo_raises_the_mean_reward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # rewards.py is found where lathe runs
    result = run_training(_grpo_config(tmp_path))
    rewards = [h["reward"] for h in result.trainer.state.log_history if "reward" in h]
    assert len(rewards) == 10
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    print(f"grpo toy: mean reward {first:.3f} (steps 1-3) -> {last:.3f} (steps 8-10)")
    assert last > first + 0.2


def test_grpo_with_beta_uses_the_reference_and_hands_out_completions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = _grpo_config(tmp_path, beta=0.05, loss_type="grpo")
    cfg["max_steps"] = 2
    result = run_training(cfg)
    trainer = result.trainer
    assert trainer.ref_model is not None
    kl = [h["kl"] for h in trainer.state.log_history if "kl" in h]
    assert kl[0] == pytest.approx(0.0, abs=1e-6)  # policy = reference at step 0
    seen: list[dict[str, object]] = []  # what the swanlab plugin's completion table receives
    trainer.lathe_completions.subscribe(lambda step, row: seen.append({"step": step, **row}))
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.preference_loss(trainer.model, batch)
    assert len(seen) == 4 * 8 and set(seen[0]) == {"step", "prompt", "completion", "reward"}
    assert seen[0]["step"] == 2 and "Say a word" in str(seen[0]["prompt"])


@pytest.mark.parametrize(("trl", "message"), [
    ({"reward_funcs": None}, "trl.reward_funcs: rl: grpo needs at least one reward function"),
    ({"use_vllm": True}, "trl.use_vllm: vLLM generation is not available in lathe-rl"),
    ({"reward_weights": [1.0, 2.0]}, "trl.reward_weights: 2 weights for 1 reward_funcs"),
    ({"vllm_server_host": "x"}, "trl.vllm_server_host: vLLM generation is not available"),
])
def test_bad_grpo_settings_are_named(tmp_path: Path, trl: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate(_grpo_config(tmp_path, **trl), Plugins.load(["rl"]))


def test_a_missing_reward_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = _grpo_config(tmp_path, reward_funcs=["missing.exact_match"])
    with pytest.raises(LatheError, match=r"trl.reward_funcs: 'missing.exact_match': no file missing.py \(looked for "
                                         + re.escape(str(tmp_path.resolve() / "missing.py"))):
        run_training(cfg)


AXOLOTL_FILE = REWARDS + '''

def gsm8k_transform(cfg, *args, **kwargs):
    """Axolotl's GRPO dataset transform: the question becomes the prompt, the answer stays a column."""
    def transform_fn(example, tokenizer=None):
        assert tokenizer is not None
        return {"prompt": [{"role": "user", "content": example["question"]}], "answer": example["answer"]}
    return transform_fn, {"remove_columns": ["question"]}


def no_question(prompts, completions, answer, **columns):
    assert "question" not in columns and answer[0] == "4"  # remove_columns honoured, the answer column kept
    return [0.0] * len(completions)
'''


def _axolotl_grpo(tmp_path: Path) -> Path:
    """An Axolotl GRPO config (no plugins: line, dataset type and rewards from configs/rewards.py)."""
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "rewards.py").write_text(AXOLOTL_FILE)
    data = tmp_path / "gsm8k.jsonl"
    write_jsonl([{"question": f"What is {i} plus 2?", "answer": "4"} for i in range(8)], data)
    cfg = base_config(tmp_path, rl="grpo", max_steps=1, micro_batch_size=2,
                      trl={"num_generations": 2, "max_completion_length": 2,
                           "reward_funcs": ["rewards.early_letter", "rewards.no_question"]},
                      datasets=[{"path": str(data), "type": "rewards.gsm8k_transform"}])
    (folder / "grpo.yml").write_text(yaml.safe_dump(cfg))
    return folder / "grpo.yml"


def test_axolotl_grpo_config_runs_unchanged_from_another_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`lathe train configs/grpo.yml` run from elsewhere finds configs/rewards.py for the dataset
    transform and the reward functions, logs where, and the saved lathe_config.yaml records no folder."""
    from click.testing import CliRunner

    from lathe.cli.commands import cli

    path = _axolotl_grpo(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert CliRunner().invoke(cli, ["config", "validate", str(path)]).exit_code == 0
    result = CliRunner().invoke(cli, ["train", str(path)])
    assert result.exit_code == 0, result.output
    rewards = path.parent.resolve() / "rewards.py"
    assert f"trl.reward_funcs: rewards.early_letter from {rewards}" in result.output
    assert f"dataset type rewards.gsm8k_transform from {rewards}" in result.output
    saved = (tmp_path / "out" / "lathe_config.yaml").read_text()
    assert str(path.parent) not in saved and "config_dir" not in saved


def test_editing_the_transform_prepares_the_data_again(tmp_path: Path) -> None:
    from lathe.config import load_config
    from lathe.data.prepare import prepare_datasets
    from lathe.testing import tiny_tokenizer

    path = _axolotl_grpo(tmp_path)
    cfg, plugins = load_config(path)
    first = prepare_datasets(cfg, tiny_tokenizer(), plugins)
    rewards = path.parent / "rewards.py"
    rewards.write_text(rewards.read_text().replace('"content": example["question"]', '"content": "Q: " + example["question"]'))
    second = prepare_datasets(cfg, tiny_tokenizer(), plugins)
    assert first.path != second.path
    assert tiny_tokenizer().decode(second.train[0]["input_ids"]).count("Q: ") == 1


def test_a_missing_transform_file_is_named(tmp_path: Path) -> None:
    from lathe.config import load_config
    from lathe.train.run import train

    path = _axolotl_grpo(tmp_path)
    path.write_text(path.read_text().replace("rewards.gsm8k_transform", "nothere.gsm8k_transform"))
    cfg, plugins = load_config(path)
    with pytest.raises(LatheError, match=r"datasets\[0\]\.type: 'nothere.gsm8k_transform': no file nothere.py"):
        train(cfg, plugins)
