"""Each built-in renders byte-identically to its family's published template on the golden set.

The goldens (``goldens/chat_templates.json``) are the published templates rendered once by
``goldens/render_published_templates.py``; a case the published template refuses must be
refused by lathe's too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lathe.data.templates import ALIASES, BUILTINS, REFUSED, SPECIAL, builtin

from .goldens.render_published_templates import PUBLISHED, render

GOLDENS = json.loads((Path(__file__).parent / "goldens" / "chat_templates.json").read_text(encoding="utf-8"))
CASES: dict[str, Any] = GOLDENS["cases"]
PAIRS = [(published, case) for published in GOLDENS["templates"] if published not in REFUSED for case in CASES]


def test_every_builtin_has_goldens_and_every_golden_a_builtin() -> None:
    assert set(BUILTINS) <= set(GOLDENS["templates"])
    rendered = {name for name in GOLDENS["templates"] if name not in REFUSED}
    assert {builtin(name).name for name in rendered} == set(BUILTINS)  # type: ignore[union-attr]
    assert set(GOLDENS["templates"]) == set(PUBLISHED)


@pytest.mark.parametrize(("published", "case"), PAIRS, ids=[f"{p}-{c}" for p, c in PAIRS])
def test_builtin_renders_like_the_published_template(published: str, case: str) -> None:
    golden = GOLDENS["templates"][published]
    ours = builtin(published)  # the built-in itself, or the one an Axolotl alias names
    assert ours is not None
    got = render(ours.text, golden["tokens"], CASES[case])
    expected = golden["renders"][case]
    if "error" in expected:
        assert "error" in got, f"{ours.name} renders a conversation the published {golden['file']} refuses"
    else:
        assert got == expected


def test_every_axolotl_template_name_resolves_or_is_refused() -> None:
    names = GOLDENS["axolotl_chat_template_names"]
    assert len(names) > 30
    for name in names:
        assert name in BUILTINS or name in ALIASES or name in SPECIAL or name in REFUSED, name


def test_aliases_name_builtins() -> None:
    assert set(ALIASES.values()) <= set(BUILTINS)


def test_docs_list_every_builtin_alias_and_refused_name() -> None:
    docs = (Path(__file__).parents[4] / "docs" / "data.md").read_text(encoding="utf-8")
    for name in [*BUILTINS, *ALIASES, *REFUSED]:
        assert f"`{name}`" in docs, name
    for b in BUILTINS.values():
        assert b.models.replace("|", "\\|") in docs, b.name
