from lathe.testing.conformance import PluginConformance


class TestTorchaoConformance(PluginConformance):
    """QAT on from the second step: the resume check kills the run across the switch."""

    plugin_name = "torchao"
    distribution = "lathe-torchao"
    config_snippet = (
        "qat:\n  weight_dtype: int4\n  activation_dtype: int8\n  group_size: 32\n  fake_quant_after_n_steps: 2\n"
    )
