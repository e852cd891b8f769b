"""A real training run tracked offline, read back from SwanLab's local files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lathe.testing import base_config, run_training
from tests.runfiles import read_runs


def _cfg(tmp_path: Path, **overrides: object) -> dict:
    return base_config(tmp_path, plugins=["swanlab"], swanlab_project="lathe-tests", swanlab_mode="offline",
                       dataset_processes=1, **overrides)


def test_metrics_config_and_config_file_are_logged(tmp_path: Path, swanlog: Path) -> None:
    result = run_training(_cfg(tmp_path, swanlab_experiment_name="exp-1", swanlab_description="a tiny run",
                               swanlab_workspace="team", swanlab_api_key="sk-NEVER-LOGGED", max_steps=3))
    (run,) = read_runs(swanlog)
    assert run.start.project == "lathe-tests" and run.start.name == "exp-1" and run.start.description == "a tiny run"
    assert run.finish.state == 1  # RUN_STATE_FINISHED
    losses = [v for _, v in run.scalars["loss"]]
    assert losses == pytest.approx(result.losses)
    assert [s for s, _ in run.scalars["loss"]] == [1, 2, 3]
    assert "learning_rate" in run.scalars and "train_loss" in run.scalars
    config = run.config
    assert config["learning_rate"] == 1e-3 and config["swanlab_project"] == "lathe-tests"
    assert config["swanlab_api_key"] == "***" and config["total_steps"] == 3
    text = run.text("lathe_config")
    assert "swanlab_project: lathe-tests" in text and "swanlab_api_key: '***'" in text
    assert "lathe_config.yaml" in run.saved
    assert "sk-NEVER-LOGGED" not in run.everything()
    assert "sk-NEVER-LOGGED" not in (result.output_dir / "lathe_config.yaml").read_text()
