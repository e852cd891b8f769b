"""``lathe plugin new NAME``: a new plugin distribution, ready to install, test and publish.

The files are the templates beside this module (``templates/``), with ``{name}``, ``{dist}``,
``{module}``, ``{title}`` and ``{title_class}`` filled in (``{{``/``}}`` are literal braces); the layout is the one every lathe plugin has
(DESIGN §5): hatchling, ``__about__.py`` version, the ``lathe.plugins`` entry point, a config
model, one hook, a docs page and tests that subclass ``PluginConformance``.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from lathe.errors import LatheError

_NAME = re.compile(r"^[a-z][a-z0-9_-]*[a-z0-9]$")
# template file → path in the new distribution ({module}/{name} are filled in)
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "about.py.tmpl": "src/{module}/__about__.py",
    "init.py.tmpl": "src/{module}/__init__.py",
    "config.py.tmpl": "src/{module}/config.py",
    "plugin.py.tmpl": "src/{module}/plugin.py",
    "docs.md.tmpl": "docs/{name}.md",
    "test_plugin.py.tmpl": "tests/test_{name}.py",
}


def names(name: str) -> dict[str, str]:
    """The plugin's names: entry point ``my_plugin``, distribution ``lathe-my-plugin``, module ``lathe_my_plugin``."""
    if not _NAME.match(name):
        raise LatheError(f"plugin name {name!r}: use lowercase letters, digits, '_' or '-', starting with a letter")
    base = name.removeprefix("lathe-").removeprefix("lathe_")
    snake = base.replace("-", "_")
    return {"name": snake, "dist": f"lathe-{base.replace('_', '-')}", "module": f"lathe_{snake}",
            "title": base.replace("-", " ").replace("_", " ").title(),
            "title_class": "".join(part.title() for part in re.split(r"[-_]", base))}


def new_plugin(name: str, parent: str | Path = ".") -> Path:
    """Write ``lathe-NAME/`` under ``parent``; refuses to touch an existing folder."""
    values = names(name)
    root = Path(parent) / values["dist"]
    if root.exists():
        raise LatheError(f"{root} already exists; choose another name or folder (nothing was written)")
    templates = resources.files("lathe.scaffold") / "templates"
    for template, target in FILES.items():
        path = root / target.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (templates / template).read_text(encoding="utf-8")
        path.write_text(text.replace("{{", "\0").replace("}}", "\1").format(**values)
                        .replace("\0", "{").replace("\1", "}"), encoding="utf-8")
    return root
