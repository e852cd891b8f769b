"""Fixtures for the data pipeline tests: a tiny tokenizer and a config factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lathe.config import Config, validate
from lathe.plugins import Plugins
from lathe.testing import tiny_tokenizer


@pytest.fixture(scope="session")
def tok() -> Any:
    return tiny_tokenizer()


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., Config]:
    """A validated config whose datasets are given; everything else small and local."""

    def make(datasets: list[dict[str, Any]], plugins: Plugins | None = None, **overrides: Any) -> Config:
        raw: dict[str, Any] = {
            "base_model": str(tmp_path / "model"),
            "datasets": datasets,
            "sequence_len": 128,
            "micro_batch_size": 1,
            "output_dir": str(tmp_path / "out"),
            "dataset_prepared_path": str(tmp_path / "prepared"),
            "dataset_processes": 1,
            "seed": 0,
            **overrides,
        }
        return validate(raw, plugins or Plugins())

    return make
