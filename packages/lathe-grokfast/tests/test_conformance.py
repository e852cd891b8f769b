from lathe.testing.conformance import PluginConformance


class TestGrokfastConformance(PluginConformance):
    plugin_name = "grokfast"
    distribution = "lathe-grokfast"
    config_snippet = "plugins: [grokfast]\ngrokfast_alpha: 0.9\ngrokfast_lamb: 1.5\n"


def test_axolotl_readme_values_are_refused_as_swapped() -> None:
    """Axolotl's Grokfast README gives grokfast_alpha: 2.0, grokfast_lamb: 0.98 (swapped)."""
    import pytest

    from lathe.config import ConfigError, validate
    from lathe.plugins import Plugins
    from lathe_grokfast import plugin

    base = {"base_model": "m", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}
    plugins = Plugins.from_modules({"grokfast": plugin})
    with pytest.raises(ConfigError) as info:
        validate({**base, "grokfast_alpha": 2.0, "grokfast_lamb": 0.98}, plugins, lines={("grokfast_alpha",): 4})
    assert str(info.value).splitlines()[1] == (
        "  - grokfast_alpha (line 4): grokfast_alpha: 2.0 is not an EMA decay (it must be below 1); alpha and "
        "lamb look swapped (Axolotl's Grokfast README has this mistake): use grokfast_alpha: 0.98 and grokfast_lamb: 2.0"
    )
    cfg = validate({**base, "grokfast_alpha": 0.98, "grokfast_lamb": 2.0}, plugins)
    assert (cfg.grokfast_alpha, cfg.grokfast_lamb) == (0.98, 2.0)
