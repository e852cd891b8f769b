"""DeepSpeed ZeRO on 2 processes (lathe train --launcher torchrun; gloo and DeepSpeed's CPU accelerator on a
CPU machine) trains the tiny model as one process does with the same global batch, saves a
plain HF model, and resumes exactly after every rank is killed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lathe.testing import base_config, run_training
from lathe.testing.resume import (
    check_resume_equals_uninterrupted,
    final_weights,
    lathe_train,
    launched,
)

pytestmark = pytest.mark.deepspeed

# 2 ranks × micro batch 2 against 1 rank × micro batch 4: the same rows per step, summed in
# another order (and padded to another length); fp32 rounding is all that may differ.
ATOL = 1e-5


def _losses(out: Path) -> list[float]:
    last = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return [h["loss"] for h in json.loads((last / "trainer_state.json").read_text())["log_history"] if "loss" in h]


def _assert_same_training(out: Path, ref: Path) -> None:
    want, got = final_weights(ref), final_weights(out)
    assert got.keys() == want.keys()
    worst = max((got[k].float() - want[k].float()).abs().max().item() for k in want)
    assert worst < ATOL, f"{out.name}: weights differ from one process by {worst}"
    assert _losses(out) == pytest.approx(_losses(ref), abs=ATOL)


def test_zero2_and_zero3_train_like_one_process_and_zero3_resumes_exactly(tmp_path: Path) -> None:
    cfg = base_config(tmp_path, max_steps=3, save_steps=2, micro_batch_size=2)
    reference = {**cfg, "micro_batch_size": 4, "output_dir": str(tmp_path / "one-process")}
    run_training(reference)
    ref = Path(reference["output_dir"])
    assert torch.any(final_weights(ref)["model.safetensors:lm_head.weight"] != 0)

    # ZeRO-2 from a file path (a copy of the shipped zero2 with one value changed by hand)
    shipped = json.loads((Path(__file__).parents[2] / "src/lathe/deepspeed_configs/zero2.json").read_text())
    path = tmp_path / "my_zero2.json"
    path.write_text(json.dumps({**shipped, "wall_clock_breakdown": False}))
    zero2 = {**cfg, "deepspeed": str(path), "output_dir": str(tmp_path / "zero2")}
    done = lathe_train(zero2, tmp_path / "zero2.yaml", launch=launched(2))
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_same_training(tmp_path / "zero2", ref)

    # ZeRO-3 by name: killed on both ranks after the step-2 checkpoint, resumed, equal to uninterrupted
    zero3 = {**cfg, "deepspeed": "zero3"}
    check_resume_equals_uninterrupted(tmp_path / "zero3", zero3, max_steps=3, kill_at=2, launch=launched(2))
    uninterrupted = tmp_path / "zero3" / "uninterrupted"
    assert any((uninterrupted / "checkpoint-2").glob("global_step2/*zero_pp_rank_1*")), "ZeRO-3 saved no shard of rank 1"
    _assert_same_training(uninterrupted, ref)

    # the final save is a plain HF model (ZeRO-3's 16-bit gathered weights), loadable by transformers
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(uninterrupted)
    saved = final_weights(uninterrupted)
    assert torch.equal(model.lm_head.weight, saved["model.safetensors:lm_head.weight"])


def test_one_process_without_launcher_and_a_contradicting_config_is_a_clear_error(tmp_path: Path) -> None:
    """zero3_bf16 forces bf16 on; with bf16: false the run stops before training, naming both."""
    cfg = base_config(tmp_path, deepspeed="zero3_bf16", bf16=False)
    done = lathe_train(cfg, tmp_path / "cfg.yaml")
    assert done.returncode != 0
    assert "deepspeed: the DeepSpeed config contradicts this config" in done.stderr, done.stderr[-3000:]
    assert "bf16.enabled=True vs hf bf16" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()
