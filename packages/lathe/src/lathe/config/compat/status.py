"""The one status of each Axolotl key, computed from Axolotl's key list, lathe's schema and the table.

"Implemented in core" is derived (a core field has the name); every other status comes from
:mod:`lathe.config.compat.table`. :func:`table_problems` lists every key without a status, with
two, or with a stale entry; a test requires it to be empty.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal, NamedTuple

from lathe.config.compat import table

Kind = Literal["implemented", "alias", "no-op", "refused"]
TABLE_FILE = "lathe/config/compat/table.py"


class Status(NamedTuple):
    kind: Kind
    detail: str
    """implemented: "core" or the plugin's name; alias: the lathe key; no-op / refused: the reason."""


@cache
def axolotl_keys() -> dict[str, Any]:
    """Axolotl's key list (``axolotl_keys.json``, written by ``scripts/axolotl_keys.py``)."""
    text = resources.files("lathe.config.compat").joinpath("axolotl_keys.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@cache
def core_fields() -> frozenset[str]:
    from lathe.config.schema import CoreConfig

    return frozenset(CoreConfig.model_fields)


def integration_of(key: str) -> str | None:
    """The Axolotl integration whose config model defines ``key`` (None: Axolotl's core schema)."""
    for name, facts in axolotl_keys()["integrations"].items():
        if key in facts["keys"]:
            return str(name)
    return None


def key_facts(key: str) -> dict[str, str] | None:
    """Axolotl's type and default of a top-level key (core or integration)."""
    data = axolotl_keys()
    if key in data["top_level"]:
        return data["top_level"][key]  # type: ignore[no-any-return]
    for facts in data["integrations"].values():
        if key in facts["keys"]:
            return facts["keys"][key]  # type: ignore[no-any-return]
    return None


def all_top_level_keys() -> list[str]:
    data = axolotl_keys()
    keys = set(data["top_level"])
    for facts in data["integrations"].values():
        keys |= set(facts["keys"])
    return sorted(keys)


def _plugin_status(plugin: str, key: str) -> Status:
    if table.PLUGINS.get(plugin):
        return Status("implemented", plugin)
    return Status("refused", f"belongs to the {plugin} integration, which is not available in lathe yet")


def _claims(key: str) -> list[tuple[str, Status]]:
    """Every source that gives ``key`` a status: (where it comes from, the status)."""
    out: list[tuple[str, Status]] = []
    if key in core_fields():
        out.append(("a core config field", Status("implemented", "core")))
    if key in table.ALIASES:
        out.append(("ALIASES", Status("alias", table.ALIASES[key])))
    if key in table.NO_OPS:
        out.append(("NO_OPS", Status("no-op", table.NO_OPS[key].why)))
    if key in table.REFUSED:
        out.append(("REFUSED", Status("refused", table.REFUSED[key])))
    if key in table.CORE_KEYS_IN_PLUGINS:
        out.append(("CORE_KEYS_IN_PLUGINS", _plugin_status(table.CORE_KEYS_IN_PLUGINS[key], key)))
    return out


def status_of(key: str) -> Status | None:
    """The status of a top-level Axolotl key (None: the table has none, a bug a test catches)."""
    claims = _claims(key)
    if claims:
        return claims[0][1]
    integration = integration_of(key)
    if integration is None:
        return None
    plugin = table.INTEGRATIONS.get(integration)
    if plugin is None:
        reason = table.INTEGRATION_REASONS.get(integration)
        return Status("refused", f"belongs to Axolotl's {integration} integration: {reason}") if reason else None
    return _plugin_status(plugin, key)


def dataset_key_status(key: str) -> Status | None:
    """The status of a key of a ``datasets`` entry."""
    from lathe.config.data import PretrainingDatasetConfig
    from lathe.data.strategies import COMMON_KEYS, core_strategies

    strategies = core_strategies().values()
    core_keys = {*COMMON_KEYS, *PretrainingDatasetConfig.model_fields}
    if key in core_keys or any(key in cls.keys for cls in strategies):
        return Status("implemented", "core")
    for cls in strategies:
        if key in cls.renamed:
            return Status("alias", cls.renamed[key])
    if key in table.DATASET_KEYS_IN_PLUGINS:
        return _plugin_status(table.DATASET_KEYS_IN_PLUGINS[key], key)
    if key in table.DATASET_REFUSED:
        return Status("refused", table.DATASET_REFUSED[key])
    return None


def table_problems() -> list[str]:
    """Keys with no status or two, and entries the key list no longer needs: empty when consistent."""
    problems = []
    for key in all_top_level_keys():
        claims = _claims(key)
        if not claims and status_of(key) is None:
            problems.append(f"{key!r} has no status: give it one in {TABLE_FILE}")
        if len(claims) > 1:
            where = " and ".join(c for c, _ in claims)
            fix = (f"delete its entry in {claims[1][0]} ({TABLE_FILE})" if claims[0][0] == "a core config field"
                   else f"keep one of them ({TABLE_FILE})")
            problems.append(f"{key!r} has two statuses ({where}): {fix}")
    known = set(all_top_level_keys())
    legacy = {"eval_strategy_steps", "lora_target_linear_modules", "gradient_checkpointing_args", "debug", "flash_attn_fuse_qkv"}
    for name, entries in (("ALIASES", table.ALIASES), ("NO_OPS", table.NO_OPS), ("REFUSED", table.REFUSED),
                          ("CORE_KEYS_IN_PLUGINS", table.CORE_KEYS_IN_PLUGINS)):
        for key in entries:
            if key not in known and key not in legacy:
                problems.append(f"{name} lists {key!r}, which is not an Axolotl key: delete it ({TABLE_FILE})")
    for key, target in table.ALIASES.items():
        if target not in core_fields():
            problems.append(f"ALIASES maps {key!r} to {target!r}, which is not a core config field")
    from lathe.config.data import PretrainingDatasetConfig
    from lathe.data.strategies import COMMON_KEYS, core_strategies

    read_by_core = {*COMMON_KEYS, *PretrainingDatasetConfig.model_fields}.union(*(set(c.keys) | set(c.renamed) for c in core_strategies().values()))
    for key in sorted(read_by_core & (set(table.DATASET_REFUSED) | set(table.DATASET_KEYS_IN_PLUGINS))):
        problems.append(f"dataset key {key!r} is read by a core prompt strategy now: delete its entry ({TABLE_FILE})")
    for key in axolotl_keys()["dataset_keys"]:
        if dataset_key_status(key) is None:
            problems.append(f"dataset key {key!r} has no status: give it one in {TABLE_FILE} (DATASET_REFUSED)")
    for integration in axolotl_keys()["integrations"]:
        if integration not in table.INTEGRATIONS:
            problems.append(f"Axolotl integration {integration!r} is missing from INTEGRATIONS ({TABLE_FILE})")
    return problems


def off_switch(key: str, value: object) -> bool:
    """``key: false`` on a boolean Axolotl key that is off by default asks for nothing."""
    facts = key_facts(key)
    return value is False and facts is not None and "bool" in facts["type"] and facts["default"] in ("None", "False")
