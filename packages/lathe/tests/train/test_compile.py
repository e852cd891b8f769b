"""torch_compile really compiles: dynamo captures the model's graph during training, and the
losses equal eager ones. The eager backend keeps it fast (graph capture, no code generation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from lathe.config.load import ConfigError
from tests.train.conftest import make_plugins
from tests.train.test_run import _cfg, _train


def test_torch_compile_captures_graphs_and_matches_eager(tmp_path: Path) -> None:
    from torch._dynamo.utils import counters

    eager = _train(tmp_path, max_steps=2, output_dir=str(tmp_path / "eager"))
    torch._dynamo.reset()
    counters.clear()
    compiled = _train(tmp_path, max_steps=2, torch_compile=True, torch_compile_backend="eager",
                      output_dir=str(tmp_path / "compiled"))
    assert counters["stats"]["unique_graphs"] > 0  # dynamo traced the model
    assert compiled.trainer.args.torch_compile and compiled.trainer.args.torch_compile_backend == "eager"
    assert compiled.losses == pytest.approx(eager.losses, rel=1e-4)
    from safetensors import safe_open

    with safe_open(str(compiled.output_dir / "model.safetensors"), "pt") as saved:
        assert not [k for k in saved.keys() if "_orig_mod" in k]  # noqa: SIM118 (safe_open is not iterable)
    torch._dynamo.reset()


def test_inductor_options_apply_inside_the_run_only(tmp_path: Path) -> None:
    import torch._inductor.config as inductor_config

    seen = {}

    class Probe(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            seen["flag"] = inductor_config.coordinate_descent_tuning

    before = inductor_config.coordinate_descent_tuning
    plugins = make_plugins(lathe_callbacks=lambda cfg: [Probe()])
    from lathe.train.run import train

    cfg = _cfg(tmp_path, plugins, max_steps=1, torch_compile=True, torch_compile_backend="eager",
               torch_compile_options={"coordinate_descent_tuning": not before})
    train(cfg, plugins)
    torch._dynamo.reset()
    assert seen["flag"] is (not before) and inductor_config.coordinate_descent_tuning is before


def test_compile_settings_without_torch_compile_or_outside_the_allowlist_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="torch_compile_backend need torch_compile: true"):
        _cfg(tmp_path, torch_compile_backend="eager")
    with pytest.raises(ConfigError, match="torch_compile_options: max_autotune not allowed"):
        _cfg(tmp_path, torch_compile=True, torch_compile_options={"max_autotune": True})
