"""Preference dataset types: what each row becomes, and bad rows named by row and field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from toy import pair_rows, rl_config

from lathe.config import validate
from lathe.data.prepare import prepare_datasets
from lathe.data.strategies import IGNORE, build_strategy, strategy_registry
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import tiny_tokenizer, write_jsonl


def _strategy(tmp_path: Path, kind: str, rl: str = "dpo", **entry: Any) -> Any:
    plugins = Plugins.load(["rl"])
    data = rl_config(tmp_path, rl, plugins=["rl"], sequence_len=512)
    data["datasets"] = [{**data["datasets"][0], "type": kind, **entry}]
    cfg = validate(data, plugins)
    return build_strategy(cfg.datasets[0], "datasets[0]", cfg, tiny_tokenizer(), strategy_registry(plugins))


def _text(ids: list[int]) -> str:
    return str(tiny_tokenizer().decode(ids))


def _trained(ids: list[int], labels: list[int]) -> str:
    return _text([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE])


def test_chatml_intel_masks_the_prompt_and_ends_each_completion_with_eos(tmp_path: Path) -> None:
    row = {"system": "You are terse.", "question": "red cat", "chosen": "cat red", "rejected": "dog"}
    out = _strategy(tmp_path, "chatml.intel").tokenize(row)
    eos = tiny_tokenizer().eos_token_id
    assert _text(out["input_ids"]).startswith("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nred cat")
    assert _trained(out["input_ids"], out["labels"]) == "cat red<|im_end|>"  # <|im_end|> is the EOS here
    assert _trained(out["rejected_input_ids"], out["rejected_labels"]) == "dog<|im_end|>"
    assert out["input_ids"][-1] == eos and out["rejected_input_ids"][-1] == eos
    prompt = out["labels"].index(next(lab for lab in out["labels"] if lab != IGNORE))
    assert out["input_ids"][:prompt] == out["rejected_input_ids"][:prompt]


def test_llama3_ultra_reads_the_last_message(tmp_path: Path) -> None:
    row = {"prompt": "red", "chosen": [{"role": "user", "content": "red"}, {"role": "assistant", "content": "blue"}],
           "rejected": [{"role": "user", "content": "red"}, {"role": "assistant", "content": "cat"}]}
    out = _strategy(tmp_path, "llama3.ultra").tokenize(row)
    assert _trained(out["input_ids"], out["labels"]).startswith("blue<|eot_id|>")


def test_chat_template_default_with_renamed_fields(tmp_path: Path) -> None:
    row = {"conv": [{"from": "user", "value": "red cat"}], "good": {"from": "assistant", "value": "cat red"},
           "bad": "dog"}
    strategy = _strategy(tmp_path, "chat_template.default", field_messages="conv", field_chosen="good",
                         field_rejected="bad", message_property_mappings={"role": "from", "content": "value"})
    out = strategy.tokenize(row)
    assert _text(out["input_ids"]).startswith("<|im_start|>user\nred cat<|im_end|>\n<|im_start|>assistant\n")
    assert _trained(out["input_ids"], out["labels"]).startswith("cat red<|im_end|>")
    assert _trained(out["rejected_input_ids"], out["rejected_labels"]).startswith("dog<|im_end|>")


def test_kto_rows_carry_their_label(tmp_path: Path) -> None:
    out = _strategy(tmp_path, "chatml.prompt_pairs", rl="kto").tokenize(
        {"prompt": "red", "completion": "blue", "label": False})
    assert out["kto_label"] == [0] and out["completion_start"][0] == out["labels"].count(IGNORE)


def test_max_prompt_len_keeps_the_last_prompt_tokens(tmp_path: Path) -> None:
    plugins = Plugins.load(["rl"])
    cfg = validate({**rl_config(tmp_path, "dpo", plugins=["rl"]), "max_prompt_len": 3}, plugins)
    strategy = build_strategy(cfg.datasets[0], "datasets[0]", cfg, tiny_tokenizer(), strategy_registry(plugins))
    out = strategy.tokenize({"question": "red cat dog bird tree", "chosen": "a", "rejected": "b"})
    assert out["labels"][:3] == [IGNORE] * 3 and out["labels"][3] != IGNORE


@pytest.mark.parametrize(("bad", "message"), [
    ({"question": "red", "rejected": "dog"}, "datasets[0] row 3: missing field 'chosen'"),
    ({"question": "red", "chosen": "dog", "rejected": "dog"},
     "datasets[0] row 3: chosen and rejected are identical (fields 'chosen' and 'rejected')"),
])
def test_bad_rows_are_named(tmp_path: Path, bad: dict[str, str], message: str) -> None:
    rows = pair_rows(6)
    rows[3] = bad
    plugins = Plugins.load(["rl"])
    cfg = validate(rl_config(tmp_path, "dpo", rows=rows, plugins=["rl"]), plugins)
    with pytest.raises(LatheError, match=re.escape(message)):
        prepare_datasets(cfg, tiny_tokenizer(), plugins)


def test_an_sft_dataset_type_is_refused_before_loading(tmp_path: Path) -> None:
    from lathe.testing import run_training

    data = tmp_path / "a.jsonl"
    write_jsonl([{"instruction": "a", "input": "", "output": "b"}], data)
    cfg = rl_config(tmp_path, "dpo", plugins=["rl"], datasets=[{"path": str(data), "type": "alpaca"}])
    with pytest.raises(LatheError, match=r"datasets\[0\]\.type: 'alpaca' is not a dataset type for rl: dpo"):
        run_training(cfg)


def test_keys_of_another_method_are_refused(tmp_path: Path) -> None:
    from lathe.config import ConfigError

    with pytest.raises(ConfigError, match=r"orpo_alpha: only read with rl: orpo \(rl is dpo\)"):
        validate({**rl_config(tmp_path, "dpo", plugins=["rl"]), "orpo_alpha": 0.1}, Plugins.load(["rl"]))
    with pytest.raises(ConfigError, match=r"trl.num_generations: only read with rl: grpo \(rl is dpo\)"):
        validate({**rl_config(tmp_path, "dpo", plugins=["rl"]), "trl": {"num_generations": 4}}, Plugins.load(["rl"]))


def test_the_compat_table_lists_what_the_plugin_provides() -> None:
    from typing import get_args

    from lathe.config.compat import table
    from lathe_rl.config import RLMethod
    from lathe_rl.strategies import preference_strategies

    assert set(preference_strategies()) == table.RL_DATASET_TYPES
    assert set(get_args(RLMethod)) >= table.RL_METHODS


def test_enabled_without_rl_stays_out_of_the_way(tmp_path: Path) -> None:
    """plugins: [rl] beside other plugins and SFT data: validates, and its keys alone are refused."""
    from lathe.config import ConfigError
    from lathe.testing import base_config

    plugins = Plugins.load(["rl"])
    cfg = validate({**base_config(tmp_path), "plugins": ["rl"]}, plugins)
    assert plugins.call("lathe_trainer_cls", cfg=cfg) is None
    with pytest.raises(ConfigError, match="rl_beta: read only with rl: set rl"):
        validate({**base_config(tmp_path), "plugins": ["rl"], "rl_beta": 0.1}, plugins)
