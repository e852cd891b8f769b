"""After training: lm-eval runs offline on local tasks and finds the accuracy the data fixes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import facts_config

from lathe.testing import run_training

KNOWN = 0.75  # three documents are labelled as trained, the fourth against it


def _results(out: Path) -> dict:
    [path] = sorted((out / "lm_eval_results").glob("*/results.json"))
    return json.loads(path.read_text())


def test_known_answer_accuracy_after_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_training(facts_config(tmp_path))
    results = _results(Path(result.output_dir))["results"]
    assert results["lathe_facts_mc"]["acc,none"] == KNOWN
    assert results["lathe_facts_gen"]["exact_match,strip"] == KNOWN
    assert "lathe_facts_mc" in capsys.readouterr().out  # the table is printed
    logged = {k: v for entry in result.trainer.state.log_history for k, v in entry.items()}
    assert logged["lm_eval/lathe_facts_mc/acc"] == KNOWN  # what the trackers receive
    assert logged["lm_eval/lathe_facts_gen/exact_match_strip"] == KNOWN


def test_an_untrained_model_does_not_score_it(tmp_path: Path) -> None:
    """The accuracy comes from training: one step leaves the generation task unsolved."""
    result = run_training(facts_config(tmp_path, max_steps=1))
    results = _results(Path(result.output_dir))["results"]
    assert results["lathe_facts_gen"]["exact_match,strip"] == 0.0


def test_post_train_off(tmp_path: Path) -> None:
    result = run_training(facts_config(tmp_path, max_steps=1, lm_eval_post_train=False))
    assert not (Path(result.output_dir) / "lm_eval_results").exists()


def test_adapter_is_merged_for_the_evaluation_and_unmerged_after(tmp_path: Path) -> None:
    """After training the LoRA adapter is merged in memory for lm-eval, then unmerged; `lathe
    lm-eval` on the saved adapter (merged from disk) finds the same scores."""
    import yaml
    from click.testing import CliRunner

    from lathe.cli.commands import cli

    cfg = facts_config(tmp_path, adapter="lora", lora_target_linear=True, lora_r=8, learning_rate=1e-2)
    result = run_training(cfg)
    layers = [m for m in result.trainer.model.modules() if hasattr(m, "merged")]
    assert layers and not any(m.merged for m in layers)
    after_training = _results(Path(result.output_dir))["results"]

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = CliRunner().invoke(cli, ["lm-eval", str(path)])
    assert run.exit_code == 0, run.output
    [_, second] = sorted((Path(result.output_dir) / "lm_eval_results").glob("*/results.json"))
    standalone = json.loads(second.read_text())["results"]
    for task in ("lathe_facts_mc", "lathe_facts_gen"):
        metric = "acc,none" if task.endswith("mc") else "exact_match,strip"
        assert standalone[task][metric] == after_training[task][metric]
