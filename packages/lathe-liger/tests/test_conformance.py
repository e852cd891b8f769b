from lathe.testing.conformance import PluginConformance


class TestLigerConformance(PluginConformance):
    plugin_name = "liger"
    distribution = "lathe-liger"
    # Every kernel key needs CUDA (test_patches.py checks the swap and its undo with CUDA faked);
    # this snippet trains on any machine.
    config_snippet = "plugins: [liger]\nliger_rope: false\nliger_fused_linear_cross_entropy: false\n"
