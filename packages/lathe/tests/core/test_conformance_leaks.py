"""The conformance suite's "no patch left behind" check catches a plugin that leaves library code
patched, also code first imported during the run (the Trainer) and module-level functions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LEAKY = '''
from lathe.hookspecs import hookimpl


@hookimpl
def lathe_post_trainer_create(cfg, trainer):
    import transformers.trainer as t
    import transformers.trainer_pt_utils as u

    original = t.Trainer.training_step

    def training_step(self, *args, **kwargs):
        return original(self, *args, **kwargs)

    t.Trainer.training_step = training_step  # never undone
    u.get_parameter_names = lambda *args, **kwargs: []  # a module-level function, never undone
'''

CONFORMANCE = '''
from lathe.testing.conformance import PluginConformance


class TestLeaky(PluginConformance):
    plugin_name = "leaky"
    distribution = "lathe-test-leaky"
    config_snippet = "plugins: [leaky]\\n"
'''


def test_patches_left_by_a_plugin_are_reported(tmp_path: Path) -> None:
    (tmp_path / "lathe_test_leaky.py").write_text(LEAKY)
    info = tmp_path / "lathe_test_leaky-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lathe-test-leaky\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[lathe.plugins]\nleaky = lathe_test_leaky\n")
    (tmp_path / "test_leaky.py").write_text(CONFORMANCE)
    # a fresh process: nothing of the Trainer is imported before the check takes its snapshot
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "test_leaky.py", "-q", "-k", "no_patch_behind", "-p", "no:cacheprovider"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "library code still patched after the run" in result.stdout
    assert "transformers.trainer.Trainer.training_step" in result.stdout
    assert "transformers.trainer_pt_utils.get_parameter_names" in result.stdout
