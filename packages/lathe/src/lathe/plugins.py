"""Finding, loading and calling plugins.

Plugins are distributions that declare an entry point in the group ``lathe.plugins``;
the entry point's name is the plugin's name, its value the module holding the
``@hookimpl`` functions. A run enables plugins by name (``plugins: [grokfast]``).
Nothing is imported from a string written in a config: Axolotl-style class paths
are looked up in ``ALIASES``.

A :class:`Plugins` object belongs to one run; there is no global registry.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from lathe import hookspecs
from lathe.__about__ import __version__ as core_version
from lathe.errors import LatheError

GROUP = "lathe.plugins"
DISABLE_ENV = "LATHE_DISABLE_PLUGINS"

# Axolotl's plugin class paths → our entry-point names. Looked up, never imported.
ALIASES: dict[str, str] = {
    "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin": "cut_cross_entropy",
    "axolotl.integrations.densemixer.DenseMixerPlugin": "densemixer",
    "axolotl.integrations.diffusion.DiffusionPlugin": "diffusion",
    "axolotl.integrations.grokfast.GrokfastPlugin": "grokfast",
    "axolotl.integrations.kd.KDPlugin": "kd",
    "axolotl.integrations.llm_compressor.LLMCompressorPlugin": "llmcompressor",
    "axolotl.integrations.lm_eval.LMEvalPlugin": "lm_eval",
    "axolotl.integrations.liger.LigerPlugin": "liger",
    "axolotl.integrations.spectrum.SpectrumPlugin": "spectrum",
    "axolotl.integrations.swanlab.SwanLabPlugin": "swanlab",
}

# Axolotl plugin class paths whose keys lathe's core reads: the line enables nothing, with one info line.
IN_CORE: dict[str, str] = {
    "axolotl.integrations.kernels.KernelsPlugin": "use_scattermoe / use_sonicmoe are core keys (docs/moe.md)",
}

# Where to get the plugins we publish, for the "not installed" message.
KNOWN_DISTRIBUTIONS: dict[str, str] = {
    "cut_cross_entropy": "lathe-cut-cross-entropy",
    "densemixer": "lathe-densemixer",
    "diffusion": "lathe-diffusion",
    "grokfast": "lathe-grokfast",
    "kd": "lathe-kd",
    "llmcompressor": "lathe-llmcompressor",
    "lm_eval": "lathe-lm-eval",
    "liger": "lathe-liger",
    "rl": "lathe-rl",
    "spectrum": "lathe-spectrum",
    "swanlab": "lathe-swanlab",
    "torchao": "lathe-torchao",
}


class PluginError(LatheError):
    """A plugin is missing, broken, or conflicts with another."""


@dataclass
class PluginInfo:
    """What ``lathe plugins`` shows about one installed plugin."""

    name: str
    distribution: str
    version: str
    module: ModuleType | None = None
    error: str | None = None
    hooks: list[str] = field(default_factory=list)


def canonical_name(name: str) -> str:
    """Map an Axolotl class path to our plugin name; other names pass unchanged."""
    return ALIASES.get(name, name)


def disabled_by_env() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def installed_entry_points() -> dict[str, metadata.EntryPoint]:
    """Entry points in our group, by plugin name. Reads metadata only; imports nothing."""
    return {ep.name: ep for ep in metadata.entry_points(group=GROUP)}


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return ("?", "?")
    return (dist.metadata["Name"], dist.version)


def _check_core_range(ep: metadata.EntryPoint) -> str | None:
    """Return a problem when the plugin's distribution requires another lathe core."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    if ep.dist is None:
        return None
    for line in ep.dist.requires or []:
        req = Requirement(line)
        wrong = req.specifier and not req.specifier.contains(Version(core_version), prereleases=True)
        if req.name == "lathe" and req.marker is None and wrong:
            return f"it requires lathe{req.specifier}, but lathe {core_version} is installed"
    return None


def load_entry_point(ep: metadata.EntryPoint) -> PluginInfo:
    """Import one plugin, catching every failure into ``PluginInfo.error``."""
    dist, version = _dist_of(ep)
    info = PluginInfo(name=ep.name, distribution=dist, version=version)
    problem = _check_core_range(ep)
    if problem:
        info.error = problem
        return info
    try:
        info.module = ep.load()
    except Exception as exc:  # a plugin's import may fail in any way
        info.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return info


def describe_all(disabled: Iterable[str] = ()) -> list[PluginInfo]:
    """Import every installed plugin (except disabled ones) for ``lathe plugins``."""
    blocked = set(disabled) | disabled_by_env()
    infos = []
    for name, ep in sorted(installed_entry_points().items()):
        if name in blocked:
            dist, version = _dist_of(ep)
            infos.append(PluginInfo(name, dist, version, error=f"disabled by {DISABLE_ENV}"))
            continue
        info = load_entry_point(ep)
        if info.module is not None:
            info.hooks = sorted(
                n for n in dir(info.module) if n.startswith("lathe_") and callable(getattr(info.module, n))
            )
        infos.append(info)
    return infos


class Plugins:
    """The plugins enabled for one run, and the calls into them."""

    def __init__(self, infos: Sequence[PluginInfo] = ()):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        for info in infos:
            self._register(info)

    @classmethod
    def load(cls, names: Sequence[str]) -> Plugins:
        """Load the plugins a config enables, failing clearly on any that cannot load."""
        plugins, problems = cls.load_available(names)
        if problems:
            raise PluginError(problems[0])
        return plugins

    @classmethod
    def load_available(cls, names: Sequence[str]) -> tuple[Plugins, list[str]]:
        """Load every plugin that can load; one problem per plugin that cannot (so that a config
        check goes on and reports the rest of the config too)."""
        available = installed_entry_points()
        blocked = disabled_by_env()
        infos, problems = [], []
        for raw in names:
            name = canonical_name(raw)
            if raw in IN_CORE:
                print(f"lathe: plugins: {raw} needs no plugin in lathe: {IN_CORE[raw]}", file=sys.stderr)
            elif name in blocked:
                problems.append(f'plugin "{name}" is enabled in `plugins` but disabled by {DISABLE_ENV}')
            elif name not in available:
                problems.append(_not_installed_message(raw, name, available))
            else:
                info = load_entry_point(available[name])
                if info.error:
                    problems.append(f'Error loading plugin "{name}" ({info.distribution} {info.version}): {info.error}')
                else:
                    infos.append(info)
        try:
            return cls(infos), problems
        except PluginError as exc:
            return cls(), [*problems, str(exc)]

    @classmethod
    def from_modules(cls, modules: Mapping[str, ModuleType]) -> Plugins:
        """Enable plugin modules directly, without installing them (for tests)."""
        return cls([PluginInfo(name, name, "0", module=m) for name, m in modules.items()])

    def _register(self, info: PluginInfo) -> None:
        if info.name in self.infos:
            return
        assert info.module is not None
        try:
            self._pm.register(info.module, name=info.name)
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self._pm.unregister(name=info.name)
            raise PluginError(
                f'Error loading plugin "{info.name}" ({info.distribution} {info.version}): {exc}'
            ) from None
        info.hooks = sorted(
            impl_name for impl_name in dir(info.module) if impl_name.startswith("lathe_")
        )
        self.infos[info.name] = info

    @property
    def names(self) -> list[str]:
        return list(self.infos)

    def answers(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook`` in ``plugins:`` order; (plugin, result) pairs.

        An implementation may take any subset of the spec's arguments.
        """
        caller = getattr(self._pm.hook, hook)
        results = []
        for impl in caller.get_hookimpls():
            args = [kwargs[a] for a in impl.argnames]
            results.append((impl.plugin_name, impl.function(*args)))
        return results

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` and combine the answers by the rule its spec declares.

        all → list of non-None results (lists concatenated); merge → one dict;
        exclusive → the single answer or None.
        """
        rule = getattr(hookspecs, hook).combine
        answered = [(p, r) for p, r in self.answers(hook, **kwargs) if r is not None]
        if rule == "all":
            out: list[Any] = []
            for _, r in answered:
                out.extend(r if isinstance(r, list) else [r])
            return out
        if rule == "merge":
            merged: dict[str, Any] = {}
            owner: dict[str, str] = {}
            for plugin, result in answered:
                for key, value in result.items():
                    if key in owner:
                        raise PluginError(
                            f"plugins {owner[key]!r} and {plugin!r} both set {key!r} in {hook}; "
                            "enable only one of them"
                        )
                    owner[key] = plugin
                    merged[key] = value
            return merged
        if len(answered) > 1:
            who = " and ".join(_answerer(p, r) for p, r in answered)
            raise PluginError(f"plugins {who} both answer {hook}, where only one may; enable only one")
        return answered[0][1] if answered else None


def _answerer(plugin: str, answer: Any) -> str:
    """``'liger' (liger_fused_linear_cross_entropy)`` when the answer names the key that enabled it."""
    key = getattr(answer, "config_key", "")
    return f"{plugin!r} ({key})" if isinstance(key, str) and key else repr(plugin)


def _not_installed_message(raw: str, name: str, available: Mapping[str, Any]) -> str:
    dist = KNOWN_DISTRIBUTIONS.get(name)
    label = f'"{raw}"' if raw == name else f'"{raw}" (plugin "{name}")'
    if dist:
        hint = f"install it with: pip install {dist}"
    else:
        from difflib import get_close_matches

        close = get_close_matches(name, list(available) + list(KNOWN_DISTRIBUTIONS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "no distribution is known to provide it"
    have = ", ".join(sorted(available)) or "none"
    return f"plugin {label} named in `plugins` is not installed; {hint} (installed plugins: {have})"
