"""A real training run tracked offline, read back from SwanLab's local files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lathe.report import REPORT_FILE, RUN_FILE
from lathe.testing import base_config, run_training
from tests.runfiles import RUN_STATE_FINISHED, read_runs


def _cfg(tmp_path: Path, **overrides: object) -> dict:
    keys = {"plugins": ["swanlab"], "swanlab_project": "lathe-tests", "swanlab_mode": "offline",
            "dataset_processes": 1, **overrides}
    return base_config(tmp_path, **keys)


def test_metrics_config_and_config_file_are_logged(tmp_path: Path, swanlog: Path) -> None:
    result = run_training(_cfg(tmp_path, swanlab_experiment_name="exp-1", swanlab_description="a tiny run",
                               swanlab_workspace="team", swanlab_api_key="sk-NEVER-LOGGED", max_steps=3))
    (run,) = read_runs(swanlog)
    assert run.start.project == "lathe-tests" and run.start.name == "exp-1" and run.start.description == "a tiny run"
    assert run.finish.state == RUN_STATE_FINISHED
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


def test_log_model_saves_the_final_model_files_to_the_run(tmp_path: Path, swanlog: Path) -> None:
    result = run_training(_cfg(tmp_path, swanlab_log_model=True, max_steps=1))
    (run,) = read_runs(swanlog)
    # The run's record (lathe_run.json, report.html) is written after training ends, not a model file.
    top_level = sorted(p.name for p in result.output_dir.iterdir() if p.is_file() and p.name not in {RUN_FILE, REPORT_FILE})
    assert "model.safetensors" in top_level and "config.json" in top_level
    assert set(top_level) <= set(run.saved)
    files = run.dir / "files"
    assert (files / "model.safetensors").read_bytes() == (result.output_dir / "model.safetensors").read_bytes()


def test_without_log_model_no_model_file_is_saved(tmp_path: Path, swanlog: Path) -> None:
    run_training(_cfg(tmp_path, max_steps=1))
    (run,) = read_runs(swanlog)
    assert "model.safetensors" not in run.saved


@pytest.mark.parametrize(("rank", "starts"), [(0, True), (1, False)])
def test_only_rank_zero_starts_swanlab_and_notifies(tmp_path: Path, swanlog: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], rank: int, starts: bool) -> None:
    import swanlab

    from lathe.config import save_resolved, validate
    from lathe.plugins import Plugins
    from lathe_swanlab import plugin
    from tests.lark_server import lark_webhook

    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "4")
    with lark_webhook(secret="s") as hook:
        data = _cfg(tmp_path, swanlab_lark_webhook_url=hook.url, swanlab_lark_secret="s")
        cfg = validate(data, Plugins.load(["swanlab"]))
        save_resolved(cfg, cfg.output_dir)
        plugin.lathe_pre_model_load(cfg)
        assert swanlab.has_run() is starts
        assert bool(plugin.lathe_callbacks(cfg)) is starts
        plugin.lathe_post_train_unload(cfg)
        assert not swanlab.has_run()
    assert len(hook.accepted) == (1 if starts else 0)
    assert len(read_runs(swanlog)) == (1 if starts else 0)
    err = capsys.readouterr().err
    assert ("distributed training detected (world_size=4)" in err) is starts


def test_disabled_mode_trains_without_writing_a_run_or_notifying(tmp_path: Path, swanlog: Path) -> None:
    from tests.lark_server import lark_webhook

    with lark_webhook(secret="s") as hook, pytest.warns(UserWarning, match="Lark notifications included"):
        result = run_training(_cfg(tmp_path, swanlab_mode="disabled", swanlab_lark_webhook_url=hook.url,
                                   swanlab_lark_secret="s", max_steps=1))
    assert result.losses and hook.accepted == [] and hook.rejected == []
    assert read_runs(swanlog) == []
