"""GRPO reward functions: built-ins by bare name, the user's by ``module.function``.

A reward function is called as TRL calls it: ``f(prompts=[...], completions=[...], **columns)``
with one entry per completion (texts) and the row's other dataset columns as lists, and
returns one float per completion (``None`` counts as 0).

``module.function`` names a Python file ``module.py`` (``pkg.module.function``: ``pkg/module.py``)
next to the config file, else in the working directory (where Axolotl, which imports it as a
module, finds it). It is loaded only when the config names it, and its path is logged.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lathe.errors import LatheError

log = logging.getLogger("lathe.rl")
RewardFn = Callable[..., list[float | None]]


def length(completions: list[str], **_: Any) -> list[float]:
    """Shorter is better: 1 for an empty completion, falling by 1/100 per character down to 0."""
    return [max(0.0, 1.0 - len(c) / 100) for c in completions]


_THINK = re.compile(r"^\s*<think>.*?</think>\s*\S", re.S)


def think_format(completions: list[str], **_: Any) -> list[float]:
    """1 when the completion is ``<think>…</think>`` followed by an answer, else 0."""
    return [1.0 if _THINK.match(c) else 0.0 for c in completions]


BUILTINS: dict[str, RewardFn] = {"length": length, "think_format": think_format}


def user_file(name: str, config_dir: Path | None) -> tuple[Path, str]:
    """(``module.py``, ``function``) for ``name`` = ``module.function``: the file next to the config
    (``config_dir``; None for a config built in Python), else in the working directory. A missing
    file is an error naming every path looked at (the caller adds the key)."""
    module_name, _, func = name.rpartition(".")
    relative = Path(module_name.replace(".", "/") + ".py")
    folders = list(dict.fromkeys(f.resolve() for f in (config_dir, Path.cwd()) if f is not None))
    path = next((f / relative for f in folders if (f / relative).is_file()), None)
    if path is None:
        where = " or ".join(str(f / relative) for f in folders)
        raise LatheError(f"{name!r}: no file {relative} (looked for {where})")
    return path, func


def load_function(path: Path, func: str) -> Callable[..., Any]:
    """``func`` of the Python file ``path`` (run once per call: the user's own code)."""
    spec = importlib.util.spec_from_file_location(f"lathe_rl_user_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, func, None)
    if not callable(fn):
        raise LatheError(f"{path} has no function {func!r}")
    return fn  # type: ignore[no-any-return]


def load_reward(name: str, config_dir: Path | None = None) -> RewardFn:
    """The reward function ``name``: a built-in, or ``module.function`` (:func:`user_file`)."""
    if name in BUILTINS:
        return BUILTINS[name]
    if "." not in name:
        raise LatheError(f"trl.reward_funcs: {name!r} is neither a built-in ({', '.join(BUILTINS)}) nor "
                         "module.function (a function in module.py next to the config)")
    try:
        path, func = user_file(name, config_dir)
        log.info("trl.reward_funcs: loading %s from %s", func, path)
        print(f"lathe: trl.reward_funcs: {name} from {path}", file=sys.stderr)
        return load_function(path, func)
    except LatheError as exc:
        raise LatheError(f"trl.reward_funcs: {exc}") from exc
