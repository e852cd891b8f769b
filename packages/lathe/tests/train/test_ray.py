"""use_ray: two local Ray Train workers (CPU, gloo) train the tiny model as one process does
with the same global batch, and the output is a plain HF model. One test: Ray starts slowly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lathe.testing import base_config, run_training
from lathe.testing.resume import final_weights, lathe_train

pytestmark = pytest.mark.ray

# 2 workers × micro batch 2 against 1 process × micro batch 4: the same rows per step, summed
# in another order (and padded to another length); fp32 rounding is all that may differ.
ATOL = 1e-5


def test_two_ray_workers_train_like_one_process(tmp_path: Path) -> None:
    cfg = base_config(tmp_path, max_steps=3, micro_batch_size=2)
    reference = run_training({**cfg, "micro_batch_size": 4, "output_dir": str(tmp_path / "one-process")})

    ray_cfg = {**cfg, "use_ray": True, "ray_num_workers": 2, "resources_per_worker": {"CPU": 1},
               "ray_run_name": "tiny", "output_dir": str(tmp_path / "ray")}
    done = lathe_train(ray_cfg, tmp_path / "ray.yaml", {"RAY_DEDUP_LOGS": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "ray"
    assert (out / "tiny").is_dir(), "Ray's run folder is not output_dir/ray_run_name"

    want, got = final_weights(reference.output_dir), final_weights(out)
    assert got.keys() == want.keys()
    worst = max((got[k] - want[k]).abs().max().item() for k in want)
    assert worst < ATOL, f"weights differ from one process by {worst}"
    history = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())["log_history"]
    assert [h["loss"] for h in history if "loss" in h] == pytest.approx(reference.losses, abs=ATOL)

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(model.lm_head.weight, got["model.safetensors:lm_head.weight"])
