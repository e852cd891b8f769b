"""Reading a dataset entry's rows: local files and folders, saved datasets, or hub ids."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lathe.errors import LatheError

if TYPE_CHECKING:
    import datasets

    from lathe.config import DatasetConfig

SUFFIX_TYPES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow", ".txt": "text"}


def _builder(ds_type: str | None, files: list[Path], where: str) -> str:
    if ds_type:
        return "json" if ds_type == "jsonl" else ds_type
    kinds = {SUFFIX_TYPES.get(f.suffix.lower()) for f in files}
    if None in kinds or len(kinds) != 1:
        raise LatheError(f"{where}: cannot tell the file type of {', '.join(f.name for f in files)}; set ds_type")
    return kinds.pop()  # type: ignore[return-value]


def is_saved_dataset(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return (path / "dataset_dict.json").is_file() or (
        (path / "state.json").is_file() and (path / "dataset_info.json").is_file()
    )


def local_files(entry: DatasetConfig, where: str) -> list[Path] | None:
    """The files an entry reads, or None when ``path`` is not local (a hub id)."""
    path = Path(entry.path).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        if is_saved_dataset(path):
            return sorted(p for p in path.rglob("*") if p.is_file())
        if entry.data_files:
            names = [entry.data_files] if isinstance(entry.data_files, str) else entry.data_files
            files = [path / n for n in names]
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise LatheError(f"{where}.data_files: no such file: {', '.join(missing)}")
            return files
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIX_TYPES)
        if not files:
            raise LatheError(f"{where}.path: folder {path} holds no json/jsonl/parquet/csv/arrow/txt files")
        return files
    if entry.path.startswith((".", "/", "~")) or path.suffix.lower() in SUFFIX_TYPES:
        raise LatheError(f"{where}.path: no such file or folder: {entry.path}")
    return None


def _find_bad_json_line(path: Path) -> str | None:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as exc:
                    return f"{path}:{number}: malformed JSON line ({exc.msg})"
    return None


def load_source(entry: DatasetConfig, where: str) -> datasets.Dataset | datasets.IterableDataset:
    """All rows of one entry (one split), sharded when ``shards`` is set; a stream with ``streaming``."""
    import datasets

    files = local_files(entry, where)
    if files is None:
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}:
            raise LatheError(f"{where}.path: {entry.path!r} is not a local file and HF_HUB_OFFLINE is set")
        ds = datasets.load_dataset(entry.path, name=entry.name, revision=entry.revision,
                                   data_files=entry.data_files, split=entry.split, streaming=entry.streaming)
    elif entry.streaming and is_saved_dataset(Path(entry.path).expanduser()):
        raise LatheError(f"{where}.streaming: a saved dataset folder is memory-mapped already; remove streaming")
    elif is_saved_dataset(Path(entry.path).expanduser()):
        loaded = datasets.load_from_disk(str(Path(entry.path).expanduser()))
        if isinstance(loaded, datasets.DatasetDict):
            if entry.split not in loaded:
                raise LatheError(f"{where}.split: {entry.split!r} is not one of {', '.join(loaded)}")
            loaded = loaded[entry.split]
        ds = loaded
    else:
        builder = _builder(entry.ds_type, files, where)
        try:
            ds = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train",
                                       streaming=entry.streaming)
        except Exception as exc:  # the loaders raise many types; find the line when it is JSON
            if builder == "json":
                for f in files:
                    bad = _find_bad_json_line(f) if f.suffix.lower() == ".jsonl" else None
                    if bad:
                        raise LatheError(f"{where}: {bad}") from None
            raise LatheError(f"{where}: cannot read {', '.join(map(str, files))}: {exc}") from None
    if entry.skip:
        ds = ds.skip(entry.skip) if entry.streaming else ds.select(range(min(entry.skip, len(ds)), len(ds)))
    if entry.shards and entry.streaming:
        raise LatheError(f"{where}.shards: not available with streaming")
    if entry.shards:
        index = entry.shards_idx or 0
        if index >= entry.shards:
            raise LatheError(f"{where}.shards_idx: {index} is not below shards ({entry.shards})")
        ds = ds.shard(num_shards=entry.shards, index=index)
    return ds
