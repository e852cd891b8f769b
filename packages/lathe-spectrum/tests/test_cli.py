"""`lathe spectrum scan CFG` through the lathe command."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lathe.cli.commands import cli
from lathe.cli.main import main
from lathe.testing import base_config


def _config(tmp_path: Path, **extra: object) -> Path:
    cfg = {**base_config(tmp_path), "plugins": ["spectrum"], **extra}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_scan_prints_the_table_then_reads_the_cache(tmp_path: Path) -> None:
    path = _config(tmp_path, spectrum_snr_dir=str(tmp_path / "snr"))
    first = CliRunner().invoke(cli, ["spectrum", "scan", str(path)])
    assert first.exit_code == 0, first.stdout
    assert first.stdout.startswith("computed ")
    rows = [line for line in first.stdout.splitlines() if line.startswith("model.layers.")]
    assert len(rows) == 14  # 2 layers × 7 matrices
    assert sum(line.endswith("yes") for line in rows) == 7
    assert "7 of 14 weights train, plus embeddings and lm_head" in first.stdout

    second = CliRunner().invoke(cli, ["spectrum", "scan", str(path), "--set", "spectrum_top_fraction=1.0"])
    assert second.exit_code == 0, second.stdout
    assert second.stdout.startswith("read ")
    assert "14 of 14 weights train" in second.stdout


def test_bad_results_dir_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "not_a_dir").write_text("")
    path = _config(tmp_path, spectrum_snr_dir=str(tmp_path / "not_a_dir"))
    with pytest.raises(SystemExit) as exit_info:
        main(["spectrum", "scan", str(path)])
    assert exit_info.value.code == 2
    assert "error: spectrum_snr_dir: " in capsys.readouterr().err
