"""Writing the resolved config next to a run's outputs, with secrets redacted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from lathe.__about__ import __version__
from lathe.config.fields import SECRET_MARK

REDACTED = "***"
_SECRET_NAME = re.compile(r"(token|secret|api_?key|password|passwd|credential)", re.IGNORECASE)
CONFIG_FILE = "lathe_config.yaml"


def secret_keys(model: type[BaseModel]) -> set[str]:
    marked = set()
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get(SECRET_MARK):
            marked.add(name)
    return marked


def is_secret_key(key: object) -> bool:
    """Keys named like secrets (``hub_token``, ``api_key``…), whatever model they are in."""
    return isinstance(key, str) and bool(_SECRET_NAME.search(key))


def redact(value: Any, marked: set[str] = frozenset()) -> Any:  # type: ignore[assignment]
    """Replace secret values (marked fields, or keys named like secrets) with ``***``."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            is_secret = k in marked or (is_secret_key(k) and isinstance(v, str))
            out[k] = REDACTED if is_secret and v not in (None, "") else redact(v)
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def resolved_dict(cfg: BaseModel) -> dict[str, Any]:
    """The config as plain data with every default filled in and secrets redacted."""
    data = cfg.model_dump(mode="json")
    return {"lathe_version": __version__, **redact(data, secret_keys(type(cfg)))}


def save_resolved(cfg: BaseModel, output_dir: str | Path) -> Path:
    """Write ``lathe_config.yaml`` (atomically) into ``output_dir``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / CONFIG_FILE
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(resolved_dict(cfg), sort_keys=False), encoding="utf-8")
    tmp.replace(target)
    return target
