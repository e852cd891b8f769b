"""Render the hook reference (docs/hooks.md) from ``hookspecs.py``: signature, combine rule and
docstring of every hook, in the order the contract lists them.

    python -m lathe.hookref > docs/hooks.md
"""

from __future__ import annotations

import inspect

from lathe import hookspecs


def specs() -> list[tuple[str, object]]:
    """Every hook spec, in source order."""
    found = [(name, f) for name, f in vars(hookspecs).items() if name.startswith("lathe_") and hasattr(f, "combine")]
    return sorted(found, key=lambda item: inspect.getsourcelines(item[1])[1])  # type: ignore[arg-type]


def render_hooks() -> str:
    lines = [
        "# Hook reference",
        "",
        "Generated from `packages/lathe/src/lathe/hookspecs.py` by `python -m lathe.hookref`; do not",
        "edit by hand. How to write a plugin: [Writing a plugin](plugins.md).",
        "",
        inspect.cleandoc(hookspecs.__doc__ or ""),
    ]
    for name, func in specs():
        signature = str(inspect.signature(func)).replace("'", "")  # type: ignore[arg-type]
        lines += ["", f"## `{name}`", "", f"**combine: {func.combine}**", "",  # type: ignore[attr-defined]
                  f"```python\ndef {name}{signature}\n```", "", inspect.cleandoc(func.__doc__ or "")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_hooks(), end="")
