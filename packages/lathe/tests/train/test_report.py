"""report.html: written by every finished ``lathe train`` and by ``lathe report OUTPUT_DIR``; its
curves are the trainer's own log numbers, exactly, and secrets never reach it."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lathe.cli.main import main
from lathe.config import validate
from lathe.plugins import Plugins
from lathe.report import REPORT_FILE, RUN_FILE
from lathe.testing import base_config

SECRET = "hf_do_not_show_me_0123456789"


class _Page(HTMLParser):
    """Collects the series tables (name → [(step, value)]), the data-report rows, <pre> and <svg> counts."""

    def __init__(self) -> None:
        super().__init__()
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.data_rows: dict[str, str] = {}
        self.pre = ""
        self.svgs = 0
        self.scripts = 0
        self._table: str | None = None
        self._cells: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in.append(tag)
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("data-series") or a.get("class")
        elif tag == "tr":
            self._cells = []
        elif tag in ("td", "th"):
            self._cells.append("")
        self.svgs += tag == "svg"
        self.scripts += tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if self._in:
            self._in.pop()
        if tag == "tr" and self._table and len(self._cells) == 2:
            key, value = self._cells
            if self._table == "data-report":
                self.data_rows[key] = value
            elif self._table in ("loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_second") and key != "step":
                self.series.setdefault(self._table, []).append((float(key), float(value)))
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] in ("td", "th") and self._cells:
            self._cells[-1] += data
        if "pre" in self._in:
            self.pre += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A 6-step run with an eval every 3 steps and a checkpoint at step 3."""
    from lathe.train.run import train

    tmp = tmp_path_factory.mktemp("report")
    cfg = validate(base_config(tmp, max_steps=6, val_set_size=0.25, eval_steps=3, save_steps=3, save_strategy="steps",
                               hub_token=SECRET), Plugins())
    return train(cfg, Plugins())


def test_train_writes_the_report_with_the_trainers_numbers(finished_run) -> None:  # type: ignore[no-untyped-def]
    out = finished_run.output_dir
    page = _parse(out / REPORT_FILE)
    log = finished_run.trainer.state.log_history
    for key in ("loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_second"):
        expected = [(float(h["step"]), float(h[key])) for h in log if key in h]
        assert expected, f"the trainer logged no {key}"
        assert page.series[key] == expected, key
    assert len(page.series["loss"]) == 6 and len(page.series["eval_loss"]) >= 2  # steps 3, 6 (and the final evaluate)
    assert page.svgs >= 5 and page.scripts == 0  # four curves and the lengths histogram, static


def test_the_report_holds_the_data_report_config_and_environment(finished_run) -> None:  # type: ignore[no-untyped-def]
    out = finished_run.output_dir
    html = (out / REPORT_FILE).read_text(encoding="utf-8")
    record = json.loads((out / RUN_FILE).read_text())
    data = record["data_report"]
    page = _parse(out / REPORT_FILE)
    assert page.data_rows["trained tokens"] == str(data["trained_tokens"]) and data["trained_tokens"] > 0
    assert page.data_rows["rows kept for training"] == str(data["rows_kept"])
    assert "base_model:" in page.pre and "max_steps: 6" in page.pre
    assert SECRET not in html and SECRET not in (out / RUN_FILE).read_text()
    assert "hub_token: '***'" in page.pre
    assert "transformers" in record["environment"] and "http" not in html.replace("http://www.w3.org/2000/svg", "")


def test_lathe_report_rebuilds_a_run_from_its_last_checkpoint(finished_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stopped = tmp_path / "stopped"
    shutil.copytree(finished_run.output_dir / "checkpoint-3", stopped / "checkpoint-3")
    main(["report", str(stopped)])
    page = _parse(stopped / REPORT_FILE)
    log = finished_run.trainer.state.log_history
    assert page.series["loss"] == [(float(h["step"]), h["loss"]) for h in log if "loss" in h and h["step"] <= 3]
    assert "Rebuilt from checkpoint-3" in (stopped / REPORT_FILE).read_text()


def test_lathe_report_on_a_directory_that_is_no_run_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path)])
    assert exc.value.code == 2
    assert "no lathe_run.json and no checkpoint-*/trainer_state.json" in capsys.readouterr().err
