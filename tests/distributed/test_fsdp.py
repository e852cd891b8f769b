"""FSDP2 on this CPU (gloo, 2 processes): the same training as one process with the same global
batch; sharded checkpoints survive a SIGKILL of one rank and resume exactly; a sharded-only
final save merges into one HF safetensors model; LoRA under FSDP2 saves the same adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lathe.train.checkpoint_io import complete_checkpoints
from tests.distributed.conftest import assert_same_weights, torchrun, weights
from tests.reliability.conftest import Workspace, assert_clean_failure

# float32 on CPU: FSDP2's reduce-scatter sums the gradients in another order than one process
ATOL = 1e-5
FSDP2 = {"fsdp_version": 2, "fsdp_config": {"fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                            "fsdp_transformer_layer_cls_to_wrap": "LlamaDecoderLayer"}}
LORA = {"adapter": "lora", "lora_target_linear": True, "lora_r": 4, "lora_alpha": 8}


def _losses(checkpoint: Path) -> list[float]:
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    return [h["loss"] for h in history if "loss" in h]


def _one_process(ws: Workspace, name: str, **overrides: Any) -> Path:
    out = ws.root / name
    run = ws.lathe("train", str(ws.config(output_dir=str(out), micro_batch_size=4, **overrides)))
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def test_fsdp2_sharded_checkpoints_survive_a_killed_rank_resume_exactly_and_merge(
    ws: Workspace, rank_killer: Path
) -> None:
    common = {"max_steps": 4, "save_steps": 2, "ddp_timeout": 120}
    reference = _one_process(ws, "one", **common)

    out = ws.root / "fsdp"
    sharded = {"fsdp_config": {**FSDP2["fsdp_config"], "state_dict_type": "SHARDED_STATE_DICT",
                               "final_state_dict_type": "SHARDED_STATE_DICT"}}
    cfg = ws.config(output_dir=str(out), micro_batch_size=2, auto_resume_from_checkpoints=True,
                    plugins=["rank_killer"], **common, **{**FSDP2, **sharded})
    env = {"PYTHONPATH": str(rank_killer)}
    killed = torchrun(ws, "train", cfg, env={**env, "LATHE_TEST_KILL_AFTER_SAVE": "2", "LATHE_TEST_KILL_RANK": "1"})
    assert killed.returncode != 0
    assert "rank 1 failed first (signal SIGKILL)" in killed.stderr, killed.stderr[-3000:]
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-2"]
    assert (out / "checkpoint-2" / "pytorch_model_fsdp_0").is_dir()  # each rank wrote its shards

    # one process cannot read the shards: refused clearly (any number > 1 re-splits them)
    alone = ws.lathe("train", str(cfg), env=env)
    assert_clean_failure(alone, "holds FSDP-sharded weights written by 2 processes", "merge-sharded-fsdp-weights")

    resumed = torchrun(ws, "train", cfg, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "checkpoint-2" in resumed.stderr
    assert not (out / "model.safetensors").exists()  # sharded only, as asked

    merged = ws.lathe("merge-sharded-fsdp-weights", str(out))
    assert merged.returncode == 0, merged.stderr[-3000:]
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out)  # one HF-layout model
    assert_same_weights(weights(out), weights(reference), ATOL)
    ref_losses, got_losses = _losses(reference / "checkpoint-4"), _losses(out / "checkpoint-4")
    assert len(got_losses) == len(ref_losses) == 4
    assert got_losses == pytest.approx(ref_losses, abs=1e-4)


def test_fsdp2_lora_equals_one_process(ws: Workspace) -> None:
    common = {"max_steps": 3, "save_steps": 3, **LORA}
    reference = _one_process(ws, "one", **common)
    out = ws.root / "fsdp-lora"
    run = torchrun(ws, "train", ws.config(output_dir=str(out), micro_batch_size=2, **common, **FSDP2))
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "adapter_config.json").is_file()
    assert_same_weights(weights(out), weights(reference), ATOL)
