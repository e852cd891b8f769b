"""Discovery, enabling by name, and every failure the plugin manager must report clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from lathe.config import ConfigError, validate
from lathe.plugins import PluginError, Plugins, canonical_name, describe_all
from tests.core.fakeplugins import GOOD, make_dist

BASE = {"base_model": "m", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}


def test_enabled_by_entry_point_name(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-one", "one", "fake_one", GOOD.format(key="one_key", arg="a", answer="None"))
    plugins = Plugins.load(["one"])
    assert plugins.names == ["one"]
    cfg = validate({**BASE, "plugins": ["one"], "one_key": 5}, plugins)
    assert cfg.one_key == 5


def _published_but_not_installed() -> tuple[str, str]:
    """A plugin we publish that this environment lacks (the core's own session has none)."""
    from lathe.plugins import ALIASES, KNOWN_DISTRIBUTIONS, installed_entry_points

    installed = installed_entry_points()
    missing = [n for n in KNOWN_DISTRIBUTIONS if n not in installed and n in ALIASES.values()]
    if not missing:
        pytest.skip("every published plugin is installed here")
    return missing[0], KNOWN_DISTRIBUTIONS[missing[0]]


def test_not_installed_names_plugin_and_distribution() -> None:
    name, dist = _published_but_not_installed()
    with pytest.raises(PluginError, match=rf'"{name}".*pip install {dist}'):
        Plugins.load([name])
    with pytest.raises(PluginError, match='"nonexistent".*not installed'):
        Plugins.load(["nonexistent"])


def test_axolotl_class_path_is_an_alias_never_imported() -> None:
    from lathe.plugins import ALIASES

    assert canonical_name("axolotl.integrations.liger.LigerPlugin") == "liger"
    name, dist = _published_but_not_installed()
    path = next(p for p, n in ALIASES.items() if n == name)
    with pytest.raises(PluginError, match=dist):
        Plugins.load([path])
    with pytest.raises(PluginError, match="not installed"):
        Plugins.load(["os.path"])  # a dotted name is never imported


def test_import_failure_names_distribution_version_and_exception(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-broken", "broken", "fake_broken", "raise RuntimeError('boom')", version="2.3")
    make_dist(plugin_dir, "fake-ok", "ok", "fake_ok", GOOD.format(key="ok_key", arg="b", answer="None"))
    with pytest.raises(PluginError, match=r'Error loading plugin "broken" \(fake-broken 2.3\): RuntimeError: boom'):
        Plugins.load(["broken"])
    listed = {i.name: i for i in describe_all()}
    assert "boom" in (listed["broken"].error or "")
    assert listed["ok"].error is None and "lathe_config_model" in listed["ok"].hooks


def test_misspelled_hook_is_caught(plugin_dir: Path) -> None:
    code = "from lathe.hookspecs import hookimpl\n@hookimpl\ndef lathe_post_trian(cfg):\n    pass\n"
    make_dist(plugin_dir, "fake-typo", "typo", "fake_typo", code)
    with pytest.raises(PluginError, match="lathe_post_trian"):
        Plugins.load(["typo"])


def test_core_range_is_checked(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-old", "old", "fake_old", "", requires=("lathe<0.1",))
    with pytest.raises(PluginError, match=r"requires lathe<0.1, but lathe .* is installed"):
        Plugins.load(["old"])


def test_env_variable_blocks_import(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dist(plugin_dir, "fake-loud", "loud", "fake_loud", "raise SystemExit('imported!')")
    monkeypatch.setenv("LATHE_DISABLE_PLUGINS", "loud")
    assert any(i.name == "loud" and "disabled" in (i.error or "") for i in describe_all())
    with pytest.raises(PluginError, match="disabled by LATHE_DISABLE_PLUGINS"):
        Plugins.load(["loud"])


def test_two_plugins_claiming_one_config_key(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-a", "a", "fake_a", GOOD.format(key="shared", arg="x", answer="None"))
    make_dist(plugin_dir, "fake-b", "b", "fake_b", GOOD.format(key="shared", arg="y", answer="None"))
    with pytest.raises(Exception, match="'shared' is defined by both 'a' and plugin 'b'"):
        validate({**BASE, "plugins": ["a", "b"]}, Plugins.load(["a", "b"]))


def test_plugin_key_clashing_with_core_key(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-c", "c", "fake_c", GOOD.format(key="learning_rate", arg="x", answer="None"))
    with pytest.raises(Exception, match="'learning_rate' is defined by both 'core' and plugin 'c'"):
        validate({**BASE, "plugins": ["c"]}, Plugins.load(["c"]))


def test_exclusive_hook_answered_twice_names_both(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-a", "a", "fake_a", GOOD.format(key="ka", arg="x", answer="int"))
    make_dist(plugin_dir, "fake-b", "b", "fake_b", GOOD.format(key="kb", arg="y", answer="str"))
    plugins = Plugins.load(["a", "b"])
    with pytest.raises(PluginError, match="'a' and 'b' both answer lathe_trainer_cls"):
        plugins.call("lathe_trainer_cls", cfg=None)


def test_merge_hook_same_key_names_both(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-a", "a", "fake_a", GOOD.format(key="ka", arg="same", answer="None"))
    make_dist(plugin_dir, "fake-b", "b", "fake_b", GOOD.format(key="kb", arg="same", answer="None"))
    with pytest.raises(PluginError, match="'a' and 'b' both set 'same'"):
        Plugins.load(["a", "b"]).call("lathe_training_args", cfg=None)


def test_merge_and_exclusive_combine_when_no_conflict(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-a", "a", "fake_a", GOOD.format(key="ka", arg="x", answer="int"))
    make_dist(plugin_dir, "fake-b", "b", "fake_b", GOOD.format(key="kb", arg="y", answer="None"))
    plugins = Plugins.load(["a", "b"])
    assert plugins.call("lathe_training_args", cfg=None) == {"x": 1, "y": 1}
    assert plugins.call("lathe_trainer_cls", cfg=None) is int


def test_all_hook_concatenates_lists_in_plugins_order() -> None:
    import types

    from lathe.hookspecs import hookimpl

    def module(tag: str) -> types.ModuleType:
        m = types.ModuleType(f"m_{tag}")

        @hookimpl
        def lathe_callbacks(cfg):  # type: ignore[no-untyped-def]
            return [f"{tag}1", f"{tag}2"]

        m.lathe_callbacks = lathe_callbacks  # type: ignore[attr-defined]
        return m

    plugins = Plugins.from_modules({"x": module("x"), "y": module("y")})
    assert plugins.call("lathe_callbacks", cfg=None) == ["x1", "x2", "y1", "y2"]


def test_installed_but_not_enabled_keys_say_how_to_enable(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-k", "kplug", "fake_k", GOOD.format(key="kplug_rate", arg="x", answer="None"))
    with pytest.raises(ConfigError, match=r"kplug_rate.*plugin 'kplug', which is not enabled.*plugins: \[kplug\]"):
        validate({**BASE, "kplug_rate": 3}, Plugins())


def test_managers_are_independent(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-one", "one", "fake_one", GOOD.format(key="one_key", arg="a", answer="None"))
    first = Plugins.load(["one"])
    second = Plugins()
    assert first.names == ["one"] and second.names == []
    assert second.call("lathe_training_args", cfg=None) == {}


def test_key_implies_its_plugin_without_a_plugins_line(
    plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """DESIGN §6: a key Axolotl accepts without a plugin line (``rl: dpo``) enables lathe's plugin."""
    from lathe.config import load_config
    from lathe.config.compat import table

    make_dist(plugin_dir, "fake-k", "kplug", "fake_k", GOOD.format(key="kplug_rate", arg="x", answer="None"))
    monkeypatch.setitem(table.PLUGINS, "kplug", True)
    monkeypatch.setitem(table.CORE_KEYS_IN_PLUGINS, "kplug_rate", "kplug")
    path = tmp_path / "cfg.yaml"
    path.write_text("base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nkplug_rate: 3\n")
    with caplog.at_level("INFO", logger="lathe.config"):
        cfg, plugins = load_config(path)
    assert plugins.names == ["kplug"] and cfg.kplug_rate == 3
    assert "`kplug_rate` enables plugin 'kplug'" in caplog.text

    path.write_text("base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nkplug_rate: null\n")
    assert load_config(path)[1].names == []  # unset enables nothing
    path.write_text("base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nkplug_rate: false\n")
    assert load_config(path)[1].names == []  # `reward_model: false` in an SFT config: nothing, and no error

    monkeypatch.setitem(table.PLUGINS, "absent", True)
    monkeypatch.setitem(table.CORE_KEYS_IN_PLUGINS, "absent_key", "absent")
    path.write_text("base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nabsent_key: 1\n")
    with pytest.raises(ConfigError, match=r"absent_key \(line 5\): this key is implemented by plugin 'absent', "
                                          r"which is not installed; pip install lathe-absent"):
        load_config(path)
