"""A conformance suite every plugin package runs by subclassing :class:`PluginConformance`.

    class TestConformance(PluginConformance):
        plugin_name = "grokfast"
        distribution = "lathe-grokfast"
        config_snippet = "plugins: [grokfast]\\ngrokfast_alpha: 0.9\\n"

Each test checks one promise of DESIGN.md: the plugin is installed and discovered, its
hooks are all known to the contract, its documented keys validate when enabled and are
refused (with a hint) when not, ``lathe plugins`` lists it, a short training with it
enabled leaves no library code patched, and a run killed with SIGKILL and resumed ends
exactly where an uninterrupted one does (the plugin's state is checkpointed).
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import yaml

# Library code a plugin might patch: every class method and module-level function under these.
_LIBRARIES = ("transformers", "torch.nn", "peft", "accelerate")


def _library_modules() -> dict[str, Any]:
    return {n: m for n, m in list(sys.modules.items()) if m is not None and n.startswith(_LIBRARIES)
            and (n in _LIBRARIES or n.startswith(tuple(f"{lib}." for lib in _LIBRARIES)))}


def _library_functions(modules: dict[str, Any] | None = None) -> dict[tuple[str, str, str], Any]:
    """Every module-level callable and every callable attribute of a class defined in the
    loaded library modules, keyed (module, class or "", attribute)."""
    seen: dict[tuple[str, str, str], Any] = {}
    for mod_name, module in (modules if modules is not None else _library_modules()).items():
        try:
            items = list(vars(module).items())
        except TypeError:
            continue
        for name, value in items:
            if inspect.isclass(value):
                if value.__module__ != mod_name:
                    continue
                for attr, member in list(vars(value).items()):
                    if callable(member) or isinstance(member, (staticmethod, classmethod)):
                        seen[(mod_name, name, attr)] = member
            elif inspect.isfunction(value) or inspect.isbuiltin(value):
                seen[(mod_name, "", name)] = value
    return seen


def _fingerprint(value: Any) -> str:
    """Where a callable was defined (module, name, source file and line): a function put in
    its place by a patch has another, even when ``functools.wraps`` copied the names."""
    func = getattr(value, "__func__", value)
    code = getattr(func, "__code__", None)
    where = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else type(func).__name__
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}@{where}"


_PRISTINE = """
import importlib, inspect, json, sys
from lathe.testing.conformance import _fingerprint, _library_functions
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
mods = {n: sys.modules[n] for n in sys.argv[1:] if sys.modules.get(n) is not None}
print(json.dumps({"|".join(k): _fingerprint(v) for k, v in _library_functions(mods).items()}))
"""


def _pristine_fingerprints(modules: list[str]) -> dict[str, str]:
    """Fingerprints of ``modules`` freshly imported in a new process (nothing patched there)."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-c", _PRISTINE, *modules], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def patches_left(before: dict[tuple[str, str, str], Any], before_modules: set[str]) -> list[str]:
    """Library functions that differ from what they were: objects present before the run are
    compared by identity; modules first imported during the run are compared with a fresh
    import of the same modules in another process."""
    after_modules = _library_modules()
    after = _library_functions(after_modules)
    changed = [".".join(filter(None, k)) for k, v in before.items()
               if k in after and after[k] is not v and not _installed_by_torch_compile(after[k])]
    new = sorted(set(after_modules) - before_modules)
    if new:
        pristine = _pristine_fingerprints(new)
        for key, value in after.items():
            if key[0] in before_modules:
                continue
            expected = pristine.get("|".join(key))
            if expected is not None and expected != _fingerprint(value):
                changed.append(".".join(filter(None, key)))
    return changed


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

        cfg = {**base_config(tmp_path, arch=self.arch, max_steps=2), **self._snippet(), **self.train_overrides}
        cfg["plugins"] = sorted({*cfg.get("plugins", []), self.plugin_name})
        before_modules = set(_library_modules())
        before = _library_functions()
        run_training(cfg)
        changed = patches_left(before, before_modules)
        assert not changed, f"library code still patched after the run: {changed[:5]}"

    def test_resume_after_sigkill_equals_uninterrupted(self, tmp_path: Path) -> None:
        """Any state the plugin keeps (an EMA, a schedule, a counter, an RNG) survives a kill:
        the plugin saves it through lathe's plugin-state contract (docs/plugins.md)."""
        from lathe.testing.resume import check_resume_equals_uninterrupted
        from lathe.testing.run import base_config

        cfg = {**base_config(tmp_path, arch=self.arch), **self._snippet(), **self.train_overrides}
        cfg["plugins"] = sorted({*cfg.get("plugins", []), self.plugin_name})
        check_resume_equals_uninterrupted(tmp_path, cfg)


def _installed_by_torch_compile(value: Any) -> bool:
    """torch.compile wraps ``nn.Module.__init__``/``__setstate__`` once per process, for good
    (``torch._dynamo.mutation_guard``); that is torch's own state, not a plugin's patch."""
    return getattr(value, "__module__", "") == "torch._dynamo.mutation_guard"


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
