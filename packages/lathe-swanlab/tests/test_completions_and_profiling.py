"""Completion tables (bounded buffer, every N steps and at the end, only for trainers that log
completions) and the profiling helpers, through real training runs read back from disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from lathe.plugins import Plugins
from lathe.testing import base_config, run_training
from lathe_swanlab import plugin as swanlab_plugin
from lathe_swanlab.completions import CompletionBuffer
from lathe_swanlab.profiling import ProfilingConfig
from tests.fake_trainers import completion_trainer, profiled_trainer, trainer_plugin
from tests.runfiles import read_runs


def _run(tmp_path: Path, trainer: type | None, **overrides: object):  # type: ignore[no-untyped-def]
    modules = {"swanlab": swanlab_plugin}
    if trainer is not None:
        modules["fake_trainer"] = trainer_plugin(trainer)
    cfg = base_config(tmp_path, plugins=["swanlab"], swanlab_project="tables", swanlab_mode="offline",
                      dataset_processes=1, **overrides)
    return run_training(cfg, Plugins.from_modules(modules))


def test_buffer_is_bounded_and_keeps_the_newest() -> None:
    buffer = CompletionBuffer(maxlen=3)
    for i in range(5):
        buffer.add(i, {"prompt": f"p{i}", "completion": "c"} if i % 2 else {"prompt": f"p{i}", "reward": 1.0})
    headers, rows = buffer.table()
    assert buffer.rows.maxlen == 3 and len(buffer) == 3
    assert headers == ["step", "prompt", "reward", "completion"]
    assert [r[1] for r in rows] == ["p2", "p3", "p4"]
    assert rows[1] == [3, "p3", "", "c"]


def test_completion_tables_every_n_steps_and_at_the_end(tmp_path: Path, swanlog: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, completion_trainer(per_step=2), max_steps=5,
         swanlab_completion_log_interval=2, swanlab_completion_max_buffer=3)
    (run,) = read_runs(swanlog)
    tables = run.tables("rlhf_completions")
    assert [step for step, _ in tables] == [2, 4, 5]
    assert [[r["prompt"] for r in rows] for _, rows in tables] == [
        ["p1.1", "p2.0", "p2.1"], ["p3.1", "p4.0", "p4.1"], ["p5.0", "p5.1"]]
    assert tables[0][1][0] == {"step": 1, "prompt": "p1.1", "chosen": "yes", "rejected": "no", "reward_diff": 0.5}
    assert "completion tables on for" in capsys.readouterr().err


def test_completion_tables_can_be_turned_off(tmp_path: Path, swanlog: Path) -> None:
    _run(tmp_path, completion_trainer(), max_steps=2, swanlab_log_completions=False,
         swanlab_completion_log_interval=1)
    (run,) = read_runs(swanlog)
    assert "rlhf_completions" not in run.media


def test_a_trainer_without_completions_gets_no_table(tmp_path: Path, swanlog: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, None, max_steps=2, swanlab_completion_log_interval=1)
    (run,) = read_runs(swanlog)
    assert "rlhf_completions" not in run.media and "loss" in run.scalars
    assert "completion tables" not in capsys.readouterr().err


def test_profiled_methods_are_logged_under_profiling(tmp_path: Path, swanlog: Path) -> None:
    result = _run(tmp_path, profiled_trainer(), max_steps=3)
    (run,) = read_runs(swanlog)
    name = type(result.trainer).__name__
    steps = run.scalars[f"profiling/Time taken: {name}.training_step"]
    forward = run.scalars[f"profiling/Time taken: {name}.forward_pass"]
    throttled = run.scalars[f"profiling/Time taken: {name}.throttled_op"]
    assert len(steps) == 3 and all(v > 0 for _, v in steps)
    assert len(forward) == 3 and all(0 < f <= s for (_, f), (_, s) in zip(forward, steps, strict=True))
    assert len(throttled) == 2  # calls 1 and 2 of 3 (log_interval=2: the first, then every 2nd)


def test_profiling_logs_nothing_when_swanlab_is_off(tmp_path: Path, swanlog: Path) -> None:
    _run(tmp_path, profiled_trainer(), max_steps=1, use_swanlab=False)
    assert read_runs(swanlog) == []


def test_profiling_is_exception_safe() -> None:
    import swanlab

    from lathe_swanlab import swanlab_profile
    from lathe_swanlab.config import SwanLabConfig

    class Owner:
        lathe_cfg = SwanLabConfig(swanlab_project="p", swanlab_mode="offline")

        @swanlab_profile
        def fails(self) -> None:
            raise ValueError("inside the profiled method")

    swanlab.init(project="p", mode="offline")
    try:
        with pytest.raises(ValueError, match="inside the profiled method"):
            Owner().fails()
    finally:
        swanlab.finish()
    (run,) = read_runs(Path("swanlog"))
    assert len(run.scalars["profiling/Time taken: Owner.fails"]) == 1


def test_profiling_config_filters_and_throttles() -> None:
    config = ProfilingConfig(min_duration_ms=1.0, log_interval=3)
    assert not config.should_log("op", 0.0005)  # 0.5 ms < 1 ms: skipped, not counted
    assert [config.should_log("op", 0.002) for _ in range(7)] == [True, False, True, False, False, True, False]
    assert config.should_log("other", 0.002)  # counted per name
    assert not ProfilingConfig(enabled=False).should_log("op", 1.0)
