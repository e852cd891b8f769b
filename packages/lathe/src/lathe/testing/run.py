"""Run a short training from a config dict, in-process, as a test would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lathe.testing.data import alpaca_rows, write_jsonl
from lathe.testing.models import write_tiny_model


def base_config(tmp_path: str | Path, arch: str = "llama", **overrides: Any) -> dict[str, Any]:
    """A complete small config in ``tmp_path``: tiny model, alpaca data, a few CPU steps."""
    tmp_path = Path(tmp_path)
    model_dir = tmp_path / f"model-{arch}"
    if not (model_dir / "config.json").exists():
        write_tiny_model(model_dir, arch)  # type: ignore[arg-type]
    data = tmp_path / "data" / "alpaca.jsonl"
    if not data.exists():
        write_jsonl(alpaca_rows(32), data)
    cfg: dict[str, Any] = {
        "base_model": str(model_dir),
        "datasets": [{"path": str(data), "type": "alpaca"}],
        **short_run(tmp_path),
    }
    cfg.update(overrides)
    return cfg


def short_run(tmp_path: Path) -> dict[str, Any]:
    """The training keys of a few quick CPU steps, writing under ``tmp_path``."""
    return {
        "sequence_len": 128,
        "micro_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_steps": 4,
        "learning_rate": 1e-3,
        "lr_scheduler": "constant",
        "optimizer": "adamw_torch",
        "bf16": False,
        "output_dir": str(tmp_path / "out"),
        "dataset_prepared_path": str(tmp_path / "prepared"),
        "logging_steps": 1,
        "seed": 0,
    }


def run_training(cfg: dict[str, Any], plugins: Any = None) -> Any:
    """Validate ``cfg`` (with the installed plugins it names or its keys imply, or the given
    ``Plugins``) and train.

    Returns what ``lathe.train.run.train`` returns (the finished run's result).
    """
    from lathe.config import validate
    from lathe.config.load import implied_plugins
    from lathe.plugins import Plugins
    from lathe.train.run import train

    if plugins is None:
        names = cfg.get("plugins", [])
        plugins = Plugins.load([*names, *implied_plugins(cfg, names)])
    config = validate(cfg, plugins, source="<test config>")
    return train(config, plugins)
