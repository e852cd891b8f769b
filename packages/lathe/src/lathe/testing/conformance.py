"""A conformance suite every plugin package runs by subclassing :class:`PluginConformance`.

    class TestConformance(PluginConformance):
        plugin_name = "grokfast"
        distribution = "lathe-grokfast"
        config_snippet = "plugins: [grokfast]\\ngrokfast_alpha: 0.9\\n"

Each test checks one promise of DESIGN.md: the plugin is installed and discovered, its
hooks are all known to the contract, its documented keys validate when enabled and are
refused (with a hint) when not, ``lathe plugins`` lists it, and a short training with it
enabled leaves no library code patched.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import yaml


def _library_functions() -> dict[tuple[str, str, str], int]:
    """id() of every function attribute of classes in loaded transformers/torch.nn modules."""
    seen: dict[tuple[str, str, str], int] = {}
    for mod_name, module in list(sys.modules.items()):
        if module is None or not mod_name.startswith(("transformers.models.", "torch.nn.modules")):
            continue
        for cls_name, cls in list(vars(module).items()):
            if not inspect.isclass(cls) or cls.__module__ != mod_name:
                continue
            for attr, value in list(vars(cls).items()):
                if callable(value):
                    seen[(mod_name, cls_name, attr)] = id(value)
    return seen


class PluginConformance:
    """Subclass in a plugin package's tests; set the three class attributes."""

    plugin_name: ClassVar[str]
    distribution: ClassVar[str]
    config_snippet: ClassVar[str]
    train_overrides: ClassVar[dict[str, Any]] = {}
    arch: ClassVar[str] = "llama"

    def _snippet(self) -> dict[str, Any]:
        data = yaml.safe_load(self.config_snippet) or {}
        assert isinstance(data, dict)
        return data

    def test_discovered_through_entry_point(self) -> None:
        from lathe.plugins import installed_entry_points, load_entry_point

        eps = installed_entry_points()
        assert self.plugin_name in eps, f"entry point {self.plugin_name!r} not in group lathe.plugins"
        info = load_entry_point(eps[self.plugin_name])
        assert info.error is None, info.error
        assert info.distribution == self.distribution

    def test_every_hook_is_in_the_contract(self) -> None:
        from lathe.plugins import Plugins

        plugins = Plugins.load([self.plugin_name])  # runs check_pending
        assert plugins.infos[self.plugin_name].hooks, "the plugin implements no hook"

    def test_documented_snippet_validates(self, tmp_path: Path) -> None:
        from lathe.config import validate
        from lathe.plugins import Plugins
        from lathe.testing.run import base_config

        data = {**base_config(tmp_path, arch=self.arch), **self._snippet()}
        data["plugins"] = sorted({*data.get("plugins", []), self.plugin_name})
        cfg = validate(data, Plugins.load(data["plugins"]))
        for key, value in self._snippet().items():
            if key != "plugins" and not isinstance(value, dict):
                assert getattr(cfg, key) == value

    def test_keys_refused_when_not_enabled(self, tmp_path: Path) -> None:
        from lathe.config import ConfigError, validate
        from lathe.plugins import Plugins
        from lathe.testing.run import base_config

        own = {k: v for k, v in self._snippet().items() if k != "plugins"}
        if not own:
            return
        data = {**base_config(tmp_path, arch=self.arch), **own}
        try:
            validate(data, Plugins())
        except ConfigError as exc:
            assert f"plugins: [{self.plugin_name}]" in str(exc)
        else:
            raise AssertionError("the plugin's keys were accepted without enabling it")

    def test_import_is_light(self) -> None:
        from lathe.plugins import installed_entry_points

        check_import_is_light(installed_entry_points()[self.plugin_name].value)

    def test_listed_by_lathe_plugins(self) -> None:
        from click.testing import CliRunner

        from lathe.cli.commands import cli

        result = CliRunner().invoke(cli, ["plugins"])
        assert result.exit_code == 0
        assert self.plugin_name in result.output and self.distribution in result.output

    def test_training_leaves_no_patch_behind(self, tmp_path: Path) -> None:
        from lathe.testing.run import base_config, run_training

        before = _library_functions()
        cfg = {**base_config(tmp_path, arch=self.arch, max_steps=2), **self._snippet(), **self.train_overrides}
        cfg["plugins"] = sorted({*cfg.get("plugins", []), self.plugin_name})
        run_training(cfg)
        after = _library_functions()
        changed = [k for k, v in before.items() if after.get(k, v) != v]
        assert not changed, f"library code still patched after the run: {changed[:5]}"


def _imports_after(module: str) -> set[str]:
    import subprocess

    code = f"import sys, importlib\nimportlib.import_module({module!r})\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def check_import_is_light(module: str) -> None:
    """A plugin module must not import torch/transformers at import time (keeps `lathe --help` fast)."""
    heavy = {"torch", "transformers", "datasets"} & _imports_after(module)
    assert not heavy, f"importing {module} imports {sorted(heavy)}; import them inside hooks"


def yaml_blocks(markdown: Path) -> list[str]:
    """The ```yaml fenced blocks of a docs page, so a test can validate each documented snippet."""
    return re.findall(r"```yaml\n(.*?)```", markdown.read_text(encoding="utf-8"), flags=re.S)
