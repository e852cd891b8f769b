from lathe.testing.conformance import PluginConformance


class TestDiffusionConformance(PluginConformance):
    plugin_name = "diffusion"
    distribution = "lathe-diffusion"
    config_snippet = "plugins: [diffusion]\ndiffusion:\n  noise_schedule: cosine\n  generation_interval: 1\n  generation_steps: 4\n  generation_max_length: 8\n"
    train_overrides = {"dataset_processes": 1}  # tiny data: no worker processes
