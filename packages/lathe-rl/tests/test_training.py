"""Each rl: method trains end to end on the toy preference set (tiny model, 10 steps)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from toy import rl_config

from lathe.testing import run_training


def _logged(result, key: str) -> list[float]:  # type: ignore[no-untyped-def]
    return [h[key] for h in result.trainer.state.log_history if key in h]


def test_dpo_starts_at_log2_and_its_margin_grows(tmp_path: Path) -> None:
    result = run_training(rl_config(tmp_path, "dpo", plugins=["rl"]))
    losses, margins = _logged(result, "loss"), _logged(result, "rewards/margins")
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)  # policy = reference at step 0
    assert margins[0] == pytest.approx(0.0, abs=1e-5)
    assert len(losses) == 10
    # over the whole toy set (margin 0 before training: policy = reference)
    final = result.trainer.evaluate(result.trainer.train_dataset)
    assert final["eval_rewards/margins"] > 0.2 and final["eval_rewards/accuracies"] > 0.6
    print(f"dpo toy: loss {losses[0]:.4f} -> {final['eval_loss']:.4f}, margin 0 -> "
          f"{final['eval_rewards/margins']:.3f}, accuracy {final['eval_rewards/accuracies']:.2f}")
    assert (result.output_dir / "model.safetensors").exists()


@pytest.mark.parametrize("method", ["ipo", "kto", "orpo", "simpo", "cpo"])
def test_each_method_trains_and_lowers_its_loss(tmp_path: Path, method: str) -> None:
    result = run_training(rl_config(tmp_path, method, plugins=["rl"]))
    losses = _logged(result, "loss")
    assert len(losses) == 10 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
    print(f"{method} toy: loss {losses[0]:.4f} -> {losses[-1]:.4f}")


def test_axolotl_style_dpo_config_without_plugins_line_trains(tmp_path: Path) -> None:
    """Axolotl's RL configs have rl: and no plugins: line; the key enables lathe-rl (DESIGN §6)."""
    from click.testing import CliRunner

    from lathe.cli.commands import cli

    cfg = rl_config(tmp_path, "dpo", max_steps=2, rl_beta=0.1)
    path = tmp_path / "dpo.yml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(cli, ["train", str(path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_lora_reference_is_the_base_with_the_adapter_disabled(tmp_path: Path) -> None:
    """Under LoRA no second copy of the weights is made, and step 0 is still log 2."""
    cfg = rl_config(tmp_path, "dpo", plugins=["rl"], adapter="lora", lora_r=4, lora_alpha=8,
                    lora_target_linear=True, max_steps=3)
    result = run_training(cfg)
    assert result.trainer.ref_model is None
    assert _logged(result, "loss")[0] == pytest.approx(math.log(2), abs=1e-5)
