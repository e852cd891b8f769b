"""A tiny model trained to answer four questions, and the local lm-eval tasks that ask them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing may be downloaded; the task YAMLs' data_files are relative to the working directory."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    shutil.copytree(DATA / "tasks", tmp_path / "tasks")
    monkeypatch.chdir(tmp_path / "tasks")


def facts_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Trains the tiny model on the four facts until it knows them (lr 3e-3, 48 steps)."""
    from lathe.testing import base_config

    cfg = base_config(
        tmp_path,
        datasets=[{"path": str(DATA / "train.jsonl"), "type": "completion"}],
        plugins=["lm_eval"],
        lm_eval_tasks=["lathe_facts_mc", "lathe_facts_gen"],
        lm_eval_include_path=str(tmp_path / "tasks"),
        lm_eval_batch_size=4,
        max_steps=48,
        learning_rate=3e-3,
        dataset_processes=1,
    )
    cfg.update(overrides)
    return cfg
