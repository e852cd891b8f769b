"""Reading the recipe: the seed's layout, files, and a clear error for what lathe cannot apply."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import SEED_RECIPE

from lathe.errors import LatheError
from lathe_llmcompressor.recipe import parse_recipe, parser_in_use


def test_seed_recipe() -> None:
    [spec] = parse_recipe(SEED_RECIPE)
    assert spec.stage == "finetuning" and spec.start == 0.0 and spec.end is None
    assert "re:.*q_proj.weight" in spec.targets and len(spec.targets) == 7


def test_recipe_from_a_file_and_a_string(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(SEED_RECIPE))
    assert parse_recipe(str(path)) == parse_recipe(SEED_RECIPE)
    assert parse_recipe(yaml.safe_dump(SEED_RECIPE)) == parse_recipe(SEED_RECIPE)


def test_unknown_modifiers_are_named() -> None:
    recipe = {"s_stage": {"s_modifiers": {"SparseGPTModifier": {"sparsity": 0.5}, "GPTQModifier": {},
                                          "ConstantPruningModifier": {"targets": "Linear", "start": 0}}}}
    with pytest.raises(LatheError, match="GPTQModifier, SparseGPTModifier cannot run"):
        parse_recipe(recipe)


@pytest.mark.parametrize(("args", "message"), [
    ({"targets": ["Linear"]}, "start is not set"),
    ({"targets": ["Linear"], "start": 0, "sparsity": 0.5}, "unknown argument"),
    ({"start": 0}, "targets must be"),
    ({"targets": ["Linear"], "start": 2, "end": 1}, "must be after start"),
])
def test_bad_arguments(args: dict, message: str) -> None:
    with pytest.raises(LatheError, match=message):
        parse_recipe({"f_stage": {"f_modifiers": {"ConstantPruningModifier": args}}})


def test_not_a_stage() -> None:
    with pytest.raises(LatheError, match="not a stage"):
        parse_recipe({"ConstantPruningModifier": {"targets": "Linear", "start": 0}})


def test_parser_path_is_reported() -> None:
    import importlib.util

    expected = "llmcompressor" if importlib.util.find_spec("llmcompressor") else "lathe"
    assert parser_in_use() == expected


def test_llmcompressor_parser_is_used_when_importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With llmcompressor importable its Recipe.from_dict reads the recipe (a stand-in package
    here: every released llmcompressor pins an older transformers than lathe's)."""
    package = tmp_path / "llmcompressor"
    (package / "recipe").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "recipe" / "__init__.py").write_text(
        "from types import SimpleNamespace\n"
        "CALLS = []\n"
        "class Recipe:\n"
        "    @staticmethod\n"
        "    def from_dict(data):\n"
        "        CALLS.append(data)\n"
        "        mod = SimpleNamespace(targets=['re:.*q_proj.weight'], start=0.0, end=None)\n"
        "        return SimpleNamespace(stage='finetuning', modifiers=[mod])\n"
    )
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        assert parser_in_use() == "llmcompressor"
        [spec] = parse_recipe(SEED_RECIPE)
        from llmcompressor.recipe import CALLS  # type: ignore[import-not-found]

        assert CALLS == [SEED_RECIPE]
        assert spec.targets == ("re:.*q_proj.weight",)
    finally:  # the stand-in must not outlive the test
        sys.modules.pop("llmcompressor.recipe", None)
        sys.modules.pop("llmcompressor", None)

