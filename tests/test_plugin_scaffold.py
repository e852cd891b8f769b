"""`lathe plugin new NAME`: the scaffolded distribution installs, passes its own tests (lathe's
conformance suite included), is listed by `lathe plugins`, and a config enabling it trains."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lathe.cli.main import main
from lathe.testing import base_config


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`lathe plugin new scaffold-check`, pip-installed (a wheel built with the hatchling of the environment: nox e2e
    installs it), uninstalled afterwards so later tests see the published plugins only."""
    parent = tmp_path_factory.mktemp("scaffold")
    main(["plugin", "new", "scaffold-check", "--dir", str(parent)])
    root = parent / "lathe-scaffold-check"
    _run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(root))
    try:
        yield root
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "lathe-scaffold-check"], capture_output=True)


def test_scaffold_has_the_layout_of_a_lathe_plugin(installed: Path) -> None:
    module = installed / "src" / "lathe_scaffold_check"
    for path in ("pyproject.toml", "README.md", "docs/scaffold_check.md", "tests/test_scaffold_check.py"):
        assert (installed / path).is_file(), path
    assert {p.name for p in module.iterdir()} >= {"__about__.py", "__init__.py", "config.py", "plugin.py"}
    assert 'scaffold_check = "lathe_scaffold_check.plugin"' in (installed / "pyproject.toml").read_text()


def test_scaffolded_plugin_passes_its_own_tests(installed: Path) -> None:
    result = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=installed)
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_lathe_plugins_lists_it(installed: Path) -> None:
    result = _run(sys.executable, "-m", "lathe", "plugins")
    assert "scaffold_check  (lathe-scaffold-check 0.1.0)" in result.stdout


def test_a_config_enabling_it_trains(installed: Path, tmp_path: Path) -> None:
    cfg = base_config(tmp_path, plugins=["scaffold_check"], max_steps=2)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    _run(sys.executable, "-m", "lathe", "train", str(path))
    summary = json.loads((Path(cfg["output_dir"]) / "scaffold_check_summary.json").read_text())
    assert summary["global_step"] == 2


def test_an_existing_folder_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lathe-taken").mkdir()
    (tmp_path / "lathe-taken" / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exc:
        main(["plugin", "new", "taken", "--dir", str(tmp_path)])
    assert exc.value.code == 2 and "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "lathe-taken").iterdir()] == ["keep.txt"]
