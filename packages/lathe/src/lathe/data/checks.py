"""What preprocess would refuse, checked from the config alone (no tokenizer, model or rows).

``lathe config validate`` runs these besides the schema (which checks chat template names): every
dataset entry's ``type`` is a known prompt strategy and its keys are that strategy's, and local
data files exist (hub ids are not looked up). Each problem names the key and its YAML line.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.plugins import Plugins

Lines = Mapping[tuple[Any, ...], int]
_PATH = re.compile(r"^([a-z_]+)\[(\d+)\]\.([a-z_]+)")


def with_line(message: str, lines: Lines) -> str:
    """``datasets[0].type: …`` → ``datasets[0].type (line 7): …``."""
    match = _PATH.match(message)
    if not match:
        return message
    name, index, key = match.group(1), int(match.group(2)), match.group(3)
    line = lines.get((name, index, key)) or lines.get((name, index))
    return f"{match.group(0)} (line {line}){message[match.end():]}" if line else message


def data_problems(data: Mapping[str, Any], plugins: Plugins, lines: Lines) -> list[str]:
    """Every problem preprocess would find in the config's dataset entries and chat templates."""
    from lathe.config.data import DatasetConfig
    from lathe.data.sources import local_files
    from lathe.data.strategies import strategy_registry

    problems: list[str] = []
    try:
        registry = strategy_registry(plugins)
    except LatheError as exc:
        return [*problems, str(exc)]
    for name in ("datasets", "test_datasets"):
        entries = data.get(name)
        for i, raw in enumerate(entries if isinstance(entries, list) else []):
            try:
                entry = DatasetConfig.model_validate(raw)
            except ValidationError:
                continue  # the schema reports it
            where = f"{name}[{i}]"
            problems += [with_line(p, lines) for p in _entry_problems(entry, where, registry, plugins)]
            try:
                local_files(entry, where)
            except LatheError as exc:
                problems.append(with_line(str(exc), lines))
    return problems


def _entry_problems(entry: Any, where: str, registry: dict[str, Any], plugins: Plugins) -> list[str]:
    from lathe.config.compat.docs import value_statuses

    kind = entry.type
    raw = dict(entry.model_extra or {})
    if isinstance(kind, dict):
        raw, kind = {**kind, **raw}, "user_defined"
    if kind is None:
        return [f"{where}.type: missing; name a prompt strategy ({', '.join(sorted(registry))})"]
    if kind not in registry:
        values = value_statuses()
        rl = dict(values["datasets[].type (rl)"])
        if kind in rl and rl[kind].kind == "implemented":
            return [f"{where}.type: {kind!r} is a preference dataset type: it needs rl: (dpo, kto, …) and lathe-rl"]
        if kind in rl:
            return [f"{where}.type: {kind!r} is an Axolotl dataset type lathe does not provide yet: {rl[kind].detail}"]
        if kind in dict(values["datasets[].type"]):
            return [f"{where}.type: {kind!r} is an Axolotl dataset type lathe does not provide yet "
                    f"(available: {', '.join(sorted(registry))})"]
        found = plugins.call("lathe_dataset_type", cfg=None, name=kind)  # a plugin's type for a user's file
        if found is None:
            from difflib import get_close_matches

            close = get_close_matches(kind, list(registry), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return [f"{where}.type: unknown prompt strategy {kind!r}; {hint}(known: {', '.join(sorted(registry))})"]
        registry = {**registry, kind: found}  # its keys are checked below
    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # renamed keys warn again when the data is prepared
        for key, value in raw.items():
            try:
                registry[kind].resolve_options({key: value}, where)
            except LatheError as exc:
                problems.append(str(exc))
    return problems
