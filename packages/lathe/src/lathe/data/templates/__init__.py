"""Chat templates by name: lathe's built-ins (one ``.jinja`` file per format), aliases, refusals.

Public functions for the rest of lathe: :func:`names`, :func:`problem` / :func:`check` (what
``config validate`` calls), :func:`builtin` and :func:`resolve_chat_template` (the template text a run uses).
"""

from __future__ import annotations

from difflib import get_close_matches

from lathe.data.templates.builtins import BUILTINS, Builtin
from lathe.data.templates.names import ALIASES, REFUSED, SPECIAL, VISION, names
from lathe.errors import LatheError

__all__ = ["ALIASES", "BUILTINS", "REFUSED", "SPECIAL", "VISION", "Builtin", "builtin", "check", "names", "problem",
           "resolve_chat_template"]


def problem(name: str) -> str | None:
    """Why ``name`` is not an accepted template name (refused: the reason; unknown: a did-you-mean), or None."""
    if name in BUILTINS or name in ALIASES or name in SPECIAL or name in VISION:
        return None
    if name in REFUSED:
        return f"{name!r} is not supported: {REFUSED[name]}"
    close = get_close_matches(name, names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (f"unknown template {name!r}{hint} (built-ins: {', '.join(BUILTINS)}; also {', '.join(SPECIAL)}; "
            "docs/data.md lists Axolotl's names)")


def check(name: str) -> None:
    """Raise a one-line ``chat_template: …`` error unless ``name`` is accepted."""
    if (why := problem(name)) is not None:
        raise LatheError(f"chat_template: {why}")


def builtin(name: str | None) -> Builtin | None:
    """The built-in a name resolves to (an Axolotl alias followed), or None for a special name or None."""
    if name is None or name in SPECIAL:
        return None
    check(name)
    if name in VISION:
        raise LatheError(f"chat_template: {name} is a vision-language template: it needs a vision-language "
                         "base_model, whose processor's own template is used")
    return BUILTINS[ALIASES.get(name, name)]


def resolve_chat_template(name: str | None, jinja: str | None, tokenizer_template: str | None) -> str | None:
    """The template text a config names: ``tokenizer_default``, a built-in name, or ``jinja``.

    ``None`` (the key unset) keeps the tokenizer's own template.
    """
    if name is None or name == "tokenizer_default":
        if name is not None and not tokenizer_template:
            raise LatheError("chat_template: tokenizer_default, but the tokenizer has no chat template; "
                             f"name a built-in ({', '.join(BUILTINS)}) or set chat_template_jinja")
        return tokenizer_template
    if name == "tokenizer_default_fallback_chatml":
        return tokenizer_template or BUILTINS["chatml"].text
    if name == "jinja":
        if not jinja:
            raise LatheError("chat_template: jinja needs chat_template_jinja (the template text)")
        return jinja
    builtin(name)  # refuses unknown names and vision-language ones (a text run)
    return BUILTINS[ALIASES.get(name, name)].text
