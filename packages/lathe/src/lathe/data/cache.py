"""The prepared-dataset cache: a content-hash key, and one writer at a time with atomic publish.

Layout under ``dataset_prepared_path`` (default ``./last_run_prepared``, as Axolotl)::

    <key>/           a complete prepared set: train/, eval/ (optional), report.json
    <key>.lock       held (flock) by the process that builds <key>
    .<key>.tmp-PID/  being written; renamed to <key> only when complete

Rename within one folder is atomic, so a ``<key>`` folder is always complete: a process
killed while writing leaves only a temp folder, which the next writer removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from lathe.__about__ import __version__
from lathe.config.fields import DATA_MARK
from lathe.errors import LatheError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from lathe.config import Config

DEFAULT_PREPARED_PATH = "last_run_prepared"
COMPLETE = "lathe_prepared.json"


def is_data_field(model: type[BaseModel], name: str) -> bool:
    extra = model.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(DATA_MARK))


def data_field_values(cfg: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Every ``data_field``-marked value of ``cfg`` (plugins' fields and nested blocks included)."""
    out: dict[str, Any] = {}
    for name in type(cfg).model_fields:
        value = getattr(cfg, name)
        if is_data_field(type(cfg), name):
            out[prefix + name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else _jsonable(value)
        elif isinstance(value, BaseModel):
            out.update(data_field_values(value, prefix=f"{prefix}{name}."))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def tokenizer_digest(tokenizer: PreTrainedTokenizerBase) -> str:
    """Hash of the tokenizer's saved files (vocabulary, merges, added tokens, chat template)."""
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                if path.name == "tokenizer_config.json":
                    conf = json.loads(data)
                    conf.pop("name_or_path", None)
                    data = json.dumps(conf, sort_keys=True).encode()
                elif path.name == "tokenizer.json":  # a call with truncation=True leaves its settings here
                    conf = json.loads(data)
                    conf.update(truncation=None, padding=None)
                    data = json.dumps(conf, sort_keys=True).encode()
                digest.update(path.name.encode() + b"\0" + data)
    digest.update((tokenizer.chat_template or "").encode())
    return digest.hexdigest()


def file_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cache_key(cfg: Config, tokenizer: PreTrainedTokenizerBase, sources: list[str], extra: dict[str, Any]) -> str:
    """Hash of data content (``sources``: file digests or hub ids), tokenizer, data fields, version."""
    payload = {
        "sources": sources,
        "tokenizer": tokenizer_digest(tokenizer),
        "fields": data_field_values(cfg),
        "extra": extra,
        "lathe": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def prepared_root(cfg: Config) -> Path:
    return Path(cfg.dataset_prepared_path or DEFAULT_PREPARED_PATH).expanduser()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE).is_file()


def cached(root: Path, key: str, write: Callable[[Path], None]) -> tuple[Path, bool]:
    """The folder of ``key``, written by ``write(temp_folder)`` unless already there.

    Returns (folder, built_here). Concurrent callers block on the lock; the first builds,
    the rest find the published folder and load it.
    """
    final = root / key
    if is_complete(final):
        return final, False
    with _locked(root / f"{key}.lock"):
        if is_complete(final):
            return final, False
        for stale in root.glob(f".{key}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():  # not ours to trust: written by something other than this code
            shutil.rmtree(final)
        temp = root / f".{key}.tmp-{os.getpid()}"
        try:
            write(temp)
            (temp / COMPLETE).write_text(json.dumps({"key": key, "lathe": __version__}))
            os.rename(temp, final)
        except OSError as exc:
            shutil.rmtree(temp, ignore_errors=True)
            raise LatheError(
                f"cannot write prepared data to {root} (dataset_prepared_path): "
                f"{exc.strerror or exc}; nothing partial was left behind"
            ) from None
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    return final, True
