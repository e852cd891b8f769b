"""The docs pages built from what lathe prints stay equal to what it prints now."""

from __future__ import annotations

import re
from pathlib import Path

from lathe.data.formats_doc import render as render_formats
from lathe.troubleshooting import CASES, message
from lathe.troubleshooting import render as render_troubleshooting

ROOT = Path(__file__).resolve().parents[4]


def test_troubleshooting_page_is_current() -> None:
    committed = (ROOT / "docs" / "troubleshooting.md").read_text()
    assert committed == render_troubleshooting(), "run: python -m lathe.troubleshooting > docs/troubleshooting.md"


def test_every_troubleshooting_case_names_its_key() -> None:
    """Each message points at what to fix: a key the case sets (with its line), or the --set option."""
    for case in CASES:
        text = message(case)
        keys = re.findall(r"^(\w+):", case.config, flags=re.M) + [o.split("=")[0] for o in case.overrides]
        assert any(re.search(rf"\b{key}\b(\[\d+\]\.\w+)? \(line \d+\)|--set {key}=", text) for key in keys), text


def test_data_formats_page_is_current() -> None:
    committed = (ROOT / "docs" / "data-formats.md").read_text()
    assert committed == render_formats(), "run: python -m lathe.data.formats_doc > docs/data-formats.md"
