from lathe.testing.conformance import PluginConformance


class TestGrokfastConformance(PluginConformance):
    plugin_name = "grokfast"
    distribution = "lathe-grokfast"
    config_snippet = "plugins: [grokfast]\ngrokfast_alpha: 0.9\ngrokfast_lamb: 1.5\n"
