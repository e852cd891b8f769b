from lathe.testing.conformance import PluginConformance


class TestKDConformance(PluginConformance):
    plugin_name = "kd"
    distribution = "lathe-kd"
    config_snippet = "plugins: [kd]\nkd_trainer: true\nkd_alpha: 0.9\nkd_ce_alpha: 0.1\nkd_temperature: 2.0\nkd_beta: 0.5\n"
    train_overrides = {"dataset_processes": 1}  # tiny data: no worker processes
