from lathe.testing.conformance import PluginConformance


class TestCutCrossEntropyConformance(PluginConformance):
    plugin_name = "cut_cross_entropy"
    distribution = "lathe-cut-cross-entropy"
    config_snippet = "plugins: [cut_cross_entropy]\ncut_cross_entropy: true\n"
