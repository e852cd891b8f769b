"""`lathe lm-eval`, config checks, the conformance suite and the docs' snippets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import facts_config

from lathe.cli.commands import cli
from lathe.config import ConfigError, validate
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training
from lathe.testing.conformance import PluginConformance, yaml_blocks

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "lm_eval.md"


class TestLmEvalConformance(PluginConformance):
    plugin_name = "lm_eval"
    distribution = "lathe-lm-eval"
    config_snippet = "plugins: [lm_eval]\nlm_eval_batch_size: 2\nlm_eval_post_train: false\n"
    train_overrides = {"dataset_processes": 1}


def test_lathe_lm_eval_command(tmp_path: Path) -> None:
    cfg = facts_config(tmp_path, lm_eval_post_train=False)
    run_training(cfg)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(cli, ["lm-eval", str(path), "--set", "lm_eval_tasks=[lathe_facts_mc]"])
    assert result.exit_code == 0, result.output
    [written] = (Path(cfg["output_dir"]) / "lm_eval_results").glob("*/results.json")
    data = json.loads(written.read_text())
    assert data["model"] == cfg["output_dir"]
    assert data["results"]["lathe_facts_mc"]["acc,none"] == 0.75
    assert "lathe_facts_mc" in result.output

    # lm_eval_model evaluates another path: the untrained base model, which knows nothing
    other = CliRunner().invoke(cli, ["lm-eval", str(path), "--set", "lm_eval_tasks=[lathe_facts_gen]",
                                     "--set", f"lm_eval_model={cfg['base_model']}"])
    assert other.exit_code == 0, other.output
    runs = sorted((Path(cfg["output_dir"]) / "lm_eval_results").glob("*/results.json"))
    latest = json.loads(runs[-1].read_text())
    assert latest["model"] == cfg["base_model"]
    assert latest["results"]["lathe_facts_gen"]["exact_match,strip"] == 0.0


def test_unknown_task_is_a_config_error(tmp_path: Path) -> None:
    data = facts_config(tmp_path, lm_eval_tasks=["lathe_facts_mc", "no_such_task_xyz"])
    with pytest.raises(ConfigError, match="lm_eval_tasks: no_such_task_xyz not found"):
        validate(data, Plugins.load(["lm_eval"]))


def test_include_path_must_be_a_folder(tmp_path: Path) -> None:
    data = facts_config(tmp_path, lm_eval_include_path=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="lm_eval_include_path: .* is not a folder"):
        validate(data, Plugins.load(["lm_eval"]))


def test_command_without_a_trained_model(tmp_path: Path) -> None:
    cfg = facts_config(tmp_path)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(cli, ["lm-eval", str(path)])
    assert result.exit_code != 0
    assert "holds no trained model" in str(result.exception) + result.output


def test_docs_have_config_snippets() -> None:
    assert len(yaml_blocks(DOC)) >= 2


@pytest.mark.parametrize("snippet", yaml_blocks(DOC))
def test_documented_snippet_validates(snippet: str, tmp_path: Path) -> None:
    """Every documented key validates, task names included (lm-eval ships gsm8k & co.)."""
    tasks = Path("my_tasks")  # the working directory is a copy of tests/data/tasks
    tasks.mkdir()
    (tasks / "my_task.yaml").write_text(Path("lathe_facts_mc.yaml").read_text().replace("lathe_facts_mc", "my_task"))
    data = {**base_config(tmp_path), **yaml.safe_load(snippet)}
    cfg = validate(data, Plugins.load(data["plugins"]))
    for key, value in yaml.safe_load(snippet).items():
        assert getattr(cfg, key) == value
