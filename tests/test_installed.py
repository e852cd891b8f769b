"""Across packages, with every distribution really installed and found through entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if p.name.startswith("lathe-"))


def lathe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lathe", *args], capture_output=True, text=True)


def _listed() -> dict[str, dict]:
    result = lathe("plugins", "--json")
    assert result.returncode == 0, result.stderr
    return {p["distribution"]: p for p in json.loads(result.stdout)}


@pytest.mark.parametrize("package", PLUGIN_PACKAGES)
def test_every_plugin_package_is_installed_and_loads(package: str) -> None:
    listed = _listed()
    assert package in listed, f"{package} is not found through the lathe.plugins entry points"
    assert listed[package]["error"] is None, listed[package]["error"]


def test_schema_holds_every_plugin_key() -> None:
    from lathe.plugins import Plugins, describe_all

    schema = json.loads(lathe("config", "schema").stdout)["properties"]
    working = [i for i in describe_all() if i.module is not None]
    for plugin, model in Plugins(working).answers("lathe_config_model"):
        if model is not None:
            missing = set(model.model_fields) - set(schema)
            assert not missing, f"{plugin}: {missing} missing from `lathe config schema`"


# Losses on the exclusive lathe_hidden_states_loss hook: at most one may be on in a run.
EXCLUSIVE_LOSS_OFF = {"kd": "kd_trainer: false", "cut_cross_entropy": "cut_cross_entropy: false"}


def test_all_plugins_enabled_together_validate(tmp_path: Path) -> None:
    names = [p["name"] for p in _listed().values()]
    cfg = tmp_path / "cfg.yaml"
    off = "".join(f"{EXCLUSIVE_LOSS_OFF[n]}\n" for n in names if n in EXCLUSIVE_LOSS_OFF)
    cfg.write_text(
        "base_model: m\ndatasets:\n  - path: org/dataset\n    type: alpaca\n"
        f"plugins: [{', '.join(names)}]\n{off}"
    )
    result = lathe("config", "validate", str(cfg))
    assert result.returncode == 0, result.stderr


def test_two_exclusive_losses_are_refused_naming_both(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("base_model: m\ndatasets:\n  - path: org/dataset\n    type: alpaca\nplugins: [cut_cross_entropy, kd]\n")
    result = lathe("config", "validate", str(cfg))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "'cut_cross_entropy' (cut_cross_entropy) and 'kd' (kd_trainer)" in result.stderr


def test_help_is_fast_enough_to_stay_lazy() -> None:
    code = ("import sys\nfrom lathe.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]", "a plugin imports heavy libraries at import time"
