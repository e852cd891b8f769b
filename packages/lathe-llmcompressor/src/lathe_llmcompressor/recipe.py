"""Reading ``llmcompressor.recipe``: the ConstantPruningModifier entries a fine-tuning run applies.

A recipe is staged as LLM Compressor writes it::

    finetuning_stage:
      finetuning_modifiers:
        ConstantPruningModifier:
          targets: ['re:.*q_proj.weight']
          start: 0

When ``llmcompressor`` is importable its own parser (``Recipe.from_dict``) reads the
recipe; otherwise lathe's, which accepts the same layout. Either way only
ConstantPruningModifier can act during fine-tuning here: any other modifier is an error
that names it. ``start``/``end`` are epochs (fractions allowed), as in LLM Compressor.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lathe.errors import LatheError

SUPPORTED = "ConstantPruningModifier"
_MODIFIER_KEYS = {"targets", "start", "end", "group", "index", "update"}
KEY = "llmcompressor.recipe"


@dataclass(frozen=True)
class PruningSpec:
    """One ConstantPruningModifier: which weights keep their zeros, from which epoch to which."""

    targets: tuple[str, ...]
    start: float
    end: float | None
    stage: str


def parser_in_use() -> str:
    """Which recipe parser is active: LLM Compressor's when it is importable, else lathe's."""
    return "llmcompressor" if importlib.util.find_spec("llmcompressor") is not None else "lathe"


def recipe_mapping(recipe: dict[str, Any] | str) -> dict[str, Any]:
    """The recipe as a mapping: given inline, as a file path, or as a YAML/JSON string."""
    if isinstance(recipe, dict):
        return recipe
    path = Path(recipe) if "\n" not in recipe else None
    if path is not None and path.suffix in (".yaml", ".yml", ".json") and not path.is_file():
        raise LatheError(f"{KEY}: recipe file {recipe!r} does not exist")
    try:
        is_file = path is not None and path.is_file()
        text = path.read_text(encoding="utf-8") if is_file and path is not None else recipe
        data = json.loads(text) if is_file and path is not None and path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise LatheError(f"{KEY}: cannot read {recipe!r}: {exc}") from exc
    if not isinstance(data, dict):
        raise LatheError(f"{KEY}: {recipe!r} is neither a recipe file nor a recipe mapping")
    return data


def parse_recipe(recipe: dict[str, Any] | str) -> list[PruningSpec]:
    """The pruning specs of ``recipe``; a clear error for anything lathe cannot apply."""
    data = recipe_mapping(recipe)
    entries = _staged_entries(data)
    if not entries:
        raise LatheError(
            f"{KEY}: no modifiers found; write them as <name>_stage: {{<name>_modifiers: {{ConstantPruningModifier: ...}}}}"
        )
    unknown = sorted({name for _, name, _ in entries if name != SUPPORTED})
    if unknown:
        raise LatheError(
            f"{KEY}: modifier(s) {', '.join(unknown)} cannot run during lathe fine-tuning; "
            f"only {SUPPORTED} is supported (apply one-shot compression with llmcompressor itself)"
        )
    if parser_in_use() == "llmcompressor":
        return _with_llmcompressor(data)
    return [_spec(stage, args) for stage, _, args in entries]


def _staged_entries(data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    entries = []
    for stage_key, stage in data.items():
        if not (isinstance(stage_key, str) and stage_key.endswith("_stage") and isinstance(stage, dict)):
            if stage_key != "args":
                raise LatheError(f"{KEY}: {stage_key!r} is not a stage (stage names end in _stage)")
            continue
        for group_key, group in stage.items():
            if not (isinstance(group_key, str) and group_key.endswith("_modifiers") and isinstance(group, dict)):
                raise LatheError(f"{KEY}.{stage_key}: {group_key!r} is not a modifier group (names end in _modifiers)")
            for name, args in group.items():
                if not isinstance(args, dict):
                    raise LatheError(f"{KEY}.{stage_key}.{group_key}.{name}: expected a mapping of arguments")
                entries.append((stage_key.removesuffix("_stage"), str(name), args))
    return entries


def _spec(stage: str, args: dict[str, Any]) -> PruningSpec:
    where = f"{KEY} ({stage} stage) {SUPPORTED}"
    extra = sorted(set(args) - _MODIFIER_KEYS)
    if extra:
        raise LatheError(f"{where}: unknown argument(s) {', '.join(extra)}; it takes targets, start and end")
    if args.get("update") is not None:
        raise LatheError(f"{where}: update has no meaning for a constant mask; remove it")
    targets = args.get("targets")
    if isinstance(targets, str):
        targets = [targets]
    if not targets or not all(isinstance(t, str) for t in targets):
        raise LatheError(f"{where}: targets must be a module name, a class name or 're:<regex>', or a list of them")
    start, end = args.get("start"), args.get("end")
    if start is None:
        raise LatheError(f"{where}: start is not set, so the mask would never apply; set start: 0")
    if float(start) < 0:
        raise LatheError(f"{where}: start must be >= 0 (epochs), got {start}")
    end = None if end is None or float(end) < 0 else float(end)
    if end is not None and end <= float(start):
        raise LatheError(f"{where}: end ({end}) must be after start ({start})")
    return PruningSpec(targets=tuple(targets), start=float(start), end=end, stage=stage)


def _with_llmcompressor(data: dict[str, Any]) -> list[PruningSpec]:
    """LLM Compressor's own parser; its modifiers are read back into lathe's specs."""
    from llmcompressor.recipe import Recipe

    try:
        parsed = Recipe.from_dict(data)
    except Exception as exc:  # its validation errors are many types
        raise LatheError(f"{KEY}: llmcompressor rejected the recipe: {exc}") from exc
    specs = []
    for modifier in parsed.modifiers:
        args = {"targets": modifier.targets, "start": modifier.start, "end": modifier.end}
        specs.append(_spec(parsed.stage, args))
    return specs
