"""Raw config data → what the schema validates: Axolotl's unset values dropped, aliases renamed,
no-op keys dropped with a warning, refused keys reported with their reason and YAML line."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from lathe.config.compat import table
from lathe.config.compat.status import dataset_key_status, off_switch, status_of

Lines = Mapping[tuple[Any, ...], int]

# Keys where an empty string is a value (an empty system prompt), not "unset".
EMPTY_IS_A_VALUE = frozenset({"default_system_message", "system_prompt", "system_format", "format", "no_input_format"})
DATASET_LISTS = ("datasets", "test_datasets", "pretraining_dataset")


class CompatWarning(UserWarning):
    """A config key from Axolotl that lathe renamed or that changes nothing here."""


def is_unset(key: object, value: object) -> bool:
    """``key:`` with no value, or ``key: ""`` where Axolotl reads an empty string as unset."""
    return value is None or (value == "" and key not in EMPTY_IS_A_VALUE)


def drop_unset(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not is_unset(k, v)}


def where(path: tuple[Any, ...], lines: Lines) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    line = lines.get(path)
    return f"{text} (line {line})" if line else text


def remap(raw: Mapping[str, Any], lines: Lines | None = None) -> tuple[dict[str, Any], list[str]]:
    """(data for the schema, problems). Every problem names the key and its YAML line."""
    lines = lines or {}
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in drop_unset(raw).items():
        if value is False and key in table.CORE_KEYS_IN_PLUGINS:
            continue  # `reward_model: false` asks for nothing: it neither enables its plugin nor needs it
        status = status_of(key)
        if status is None or status.kind == "implemented":
            out[key] = value
        elif status.kind == "alias":
            warnings.warn(f"config key {key!r} is now {status.detail!r}; please rename it", CompatWarning, stacklevel=3)
            if status.detail in raw and not is_unset(status.detail, raw[status.detail]):
                problems.append(f"{where((key,), lines)}: set {key} or {status.detail}, not both (they are the same key)")
            else:
                out[status.detail] = value
        elif status.kind == "no-op":
            only = table.NO_OPS[key].only
            if only is not None and value not in only:
                problems.append(f"{where((key,), lines)}: {value!r} is not available: {status.detail}")
            elif value is not False:
                warnings.warn(f"config key {key!r} has no effect in lathe: {status.detail}", CompatWarning, stacklevel=3)
        elif not off_switch(key, value):
            problems.append(f"{where((key,), lines)}: not available in lathe: {status.detail}")
    for name in DATASET_LISTS:
        if isinstance(out.get(name), list):
            out[name] = [_entry(e, (name, i), lines, problems) for i, e in enumerate(out[name])]
    return out, problems


def _entry(entry: Any, path: tuple[Any, ...], lines: Lines, problems: list[str]) -> Any:
    if not isinstance(entry, dict):
        return entry
    entry = drop_unset(entry)
    for key in list(entry):
        status = dataset_key_status(key)
        if status is not None and status.kind == "refused":
            if entry[key] is not False:  # `key: false` asks for nothing
                problems.append(f"{where((*path, key), lines)}: not available in lathe: {status.detail}")
            del entry[key]
    return entry
