from toy import PAIRS_FILE

from lathe.testing.conformance import PluginConformance


class TestRLConformance(PluginConformance):
    plugin_name = "rl"
    distribution = "lathe-rl"
    config_snippet = "plugins: [rl]\nrl: dpo\nrl_beta: 0.2\n"
    train_overrides = {"datasets": [{"path": str(PAIRS_FILE), "type": "chatml.intel"}], "sequence_len": 64}
