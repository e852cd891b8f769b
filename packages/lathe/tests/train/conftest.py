"""Helpers for the training tests: validated configs and throwaway plugins."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

from lathe.hookspecs import hookimpl


def plugin(name: str = "testplugin", **hooks: Any) -> types.ModuleType:
    """A plugin module whose hooks are the given functions (keyword = hook name)."""
    module = types.ModuleType(name)
    for hook, func in hooks.items():
        func.__name__ = hook
        setattr(module, hook, hookimpl(func))
    return module


def make_plugins(**hooks: Any):  # type: ignore[no-untyped-def]
    from lathe.plugins import Plugins

    return Plugins.from_modules({"testplugin": plugin(**hooks)}) if hooks else Plugins()


def make_cfg(tmp_path: Path, plugins: Any = None, **overrides: Any):  # type: ignore[no-untyped-def]
    from lathe.config import validate
    from lathe.plugins import Plugins
    from lathe.testing import base_config

    return validate(base_config(tmp_path, **overrides), plugins or Plugins(), source="<test>")


@pytest.fixture
def cfg_of(tmp_path: Path, tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    """Build a validated config on the session's tiny model: ``cfg_of(**overrides)``."""

    def build(**overrides: Any):  # type: ignore[no-untyped-def]
        return make_cfg(tmp_path, **{"base_model": str(tiny_model_dir), **overrides})

    return build
