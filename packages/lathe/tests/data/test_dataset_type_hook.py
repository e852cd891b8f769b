"""lathe_dataset_type: a plugin supplies the strategy for a type no registry has (a user's file),
is told the name, has its errors placed at the entry, and its source digest keys the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from lathe.data.checks import data_problems
from lathe.data.prepare import prepare_datasets
from lathe.data.strategies import PromptStrategy
from lathe.errors import LatheError
from lathe.hookspecs import hookimpl
from lathe.plugins import Plugins
from lathe.testing import write_jsonl

SOURCE = {"digest": "one"}


class FromName(PromptStrategy):
    """Trains the row's text; refuses the name ``bad.name``; its digest is SOURCE's."""

    keys: ClassVar[dict[str, Any]] = {"suffix": ""}

    def __init__(self, cfg: Any, tokenizer: Any, options: dict[str, Any]):
        super().__init__(cfg, tokenizer, options)
        if options["type"] == "bad.name":
            raise LatheError("'bad.name': no file bad.py")

    def source_digest(self) -> str:
        return SOURCE["digest"]

    def tokenize(self, row: dict[str, Any]) -> Any:
        ids = self.encode(row["text"] + self.options["suffix"] + " " + self.options["type"], first=True)
        return {"input_ids": ids, "labels": ids}


class Plugin:
    @hookimpl
    def lathe_dataset_type(self, cfg: Any, name: str) -> Any:
        return FromName if name.startswith(("mine.", "bad.")) else None


@pytest.fixture
def plugins() -> Plugins:
    return Plugins.from_modules({"mine": Plugin()})  # type: ignore[dict-item]


def _entry(tmp_path: Path, kind: str, **keys: Any) -> dict[str, Any]:
    data = tmp_path / "rows.jsonl"
    write_jsonl([{"text": f"row {i}"} for i in range(4)], data)
    return {"path": str(data), "type": kind, **keys}


def test_a_plugin_type_is_built_with_its_name_and_keys_the_cache(make_cfg: Any, tok: Any, tmp_path: Path,
                                                                 plugins: Plugins) -> None:
    cfg = make_cfg([_entry(tmp_path, "mine.transform", suffix="!")], plugins)
    first = prepare_datasets(cfg, tok, plugins)
    assert tok.decode(first.train[0]["input_ids"]).endswith("! mine.transform")
    SOURCE["digest"] = "two"  # the user's file changed
    try:
        assert prepare_datasets(cfg, tok, plugins).path != first.path
    finally:
        SOURCE["digest"] = "one"


def test_config_validate_accepts_the_type_and_checks_its_keys(tmp_path: Path, plugins: Plugins) -> None:
    good = {"datasets": [_entry(tmp_path, "mine.transform", suffix="!")]}
    assert data_problems(good, plugins, {}) == []
    bad = {"datasets": [_entry(tmp_path, "mine.transform", sufix="!")]}
    assert any("datasets[0].sufix: unknown key" in p for p in data_problems(bad, plugins, {}))
    assert any("unknown prompt strategy 'other.transform'" in p
               for p in data_problems({"datasets": [_entry(tmp_path, "other.transform")]}, plugins, {}))


def test_its_errors_name_the_entry(make_cfg: Any, tok: Any, tmp_path: Path, plugins: Plugins) -> None:
    cfg = make_cfg([_entry(tmp_path, "bad.name")], plugins)
    with pytest.raises(LatheError, match=r"datasets\[0\]\.type: 'bad.name': no file bad.py"):
        prepare_datasets(cfg, tok, plugins)
