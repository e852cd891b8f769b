"""Each built-in renders byte-identically to its family's published template on the golden set.

The goldens (``goldens/chat_templates.json``) are the published templates rendered once by
``goldens/render_published_templates.py``; a case the published template refuses must be
refused by lathe's too. Where the published template silently drops what its format cannot
hold (phi-4 drops tool messages; both Phi-4 formats drop structured ``tool_calls``), lathe's
refuses instead (``REFUSES_WHAT_PUBLISHED_DROPS``): a training row that loses turns unseen is
worse than one named in an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lathe.data.templates import ALIASES, BUILTINS, REFUSED, SPECIAL, VISION, builtin

from .goldens.render_published_templates import PUBLISHED, TRANSCRIBED, render

GOLDENS = json.loads((Path(__file__).parent / "goldens" / "chat_templates.json").read_text(encoding="utf-8"))
CASES: dict[str, Any] = GOLDENS["cases"]
PAIRS = [(published, case) for published, golden in GOLDENS["templates"].items() if published not in REFUSED
         for case in golden["renders"]]
# (built-in, case) -> the refusal lathe gives where the published template renders the case by dropping a part of it.
REFUSES_WHAT_PUBLISHED_DROPS: dict[tuple[str, str], str] = {
    ("phi_4", "tools"): "phi_4: the format has no place for tool definitions",
    ("phi_4", "tools_string_arguments"): "phi_4: the format has no place for tool definitions",
    ("phi_4_mini", "tools"): "phi_4_mini: tool definitions go in the system message's tools field",
    ("phi_4_mini", "tools_string_arguments"): "phi_4_mini: tool definitions go in the system message's tools field",
}


def test_every_builtin_has_goldens_and_every_golden_a_builtin() -> None:
    assert set(BUILTINS) <= set(GOLDENS["templates"])
    rendered = {name for name in GOLDENS["templates"] if name not in REFUSED}
    assert {builtin(name).name for name in rendered} == set(BUILTINS)  # type: ignore[union-attr]
    assert set(GOLDENS["templates"]) == set(PUBLISHED) | set(TRANSCRIBED)


@pytest.mark.parametrize(("published", "case"), PAIRS, ids=[f"{p}-{c}" for p, c in PAIRS])
def test_builtin_renders_like_the_published_template(published: str, case: str) -> None:
    golden = GOLDENS["templates"][published]
    ours = builtin(published)  # the built-in itself, or the one an Axolotl alias names
    assert ours is not None
    got = render(ours.text, golden["tokens"], CASES.get(case) or golden["extra_cases"][case])
    expected = golden["renders"][case]
    if (published, case) in REFUSES_WHAT_PUBLISHED_DROPS:
        assert "text" in expected, "the published template refuses it too: drop the entry"
        assert REFUSES_WHAT_PUBLISHED_DROPS[published, case] in got.get("error", ""), got
    elif "error" in expected:
        assert "error" in got, f"{ours.name} renders a conversation the published {golden['file']} refuses"
    else:
        assert got == expected


_TOOL_CALL = {"role": "assistant", "content": "", "tool_calls": CASES["tools"]["messages"][1]["tool_calls"]}
_TOOL_RESULT = {"role": "tool", "content": "22 C, sunny"}
_USER = {"role": "user", "content": "Weather in Paris?"}


@pytest.mark.parametrize(("name", "messages", "refusal"), [
    ("phi_4", [_USER, _TOOL_CALL], "phi_4: the format has no tool calls"),
    ("phi_4", [_USER, {"role": "assistant", "content": "Let me look."}, _TOOL_RESULT],
     "phi_4: only system, user and assistant messages can be rendered, not tool"),
    ("phi_4_mini", [_USER, _TOOL_CALL], "phi_4_mini: tool calls are written in the assistant content"),
    ("phi_4_mini", [{"role": "system", "content": "Tools.", "tools": [{"name": "get_weather"}]}, _USER],
     "phi_4_mini: a system message's tools must be a JSON string"),
])
def test_what_the_published_phi_4_templates_drop_is_refused(name: str, messages: list[Any], refusal: str) -> None:
    ours = builtin(name)
    assert ours is not None
    golden = GOLDENS["templates"][name]
    assert refusal in render(ours.text, golden["tokens"], {"messages": messages}).get("error", "")


def test_every_axolotl_template_name_resolves_or_is_refused() -> None:
    names = GOLDENS["axolotl_chat_template_names"]
    assert len(names) > 30
    for name in names:
        assert name in BUILTINS or name in ALIASES or name in SPECIAL or name in REFUSED or name in VISION, name


def test_aliases_name_builtins() -> None:
    assert set(ALIASES.values()) <= set(BUILTINS)


def test_docs_list_every_builtin_alias_and_refused_name() -> None:
    docs = (Path(__file__).parents[4] / "docs" / "data.md").read_text(encoding="utf-8")
    for name in [*BUILTINS, *ALIASES, *REFUSED, *VISION]:
        assert f"`{name}`" in docs, name
    for b in BUILTINS.values():
        assert b.models.replace("|", "\\|") in docs, b.name
