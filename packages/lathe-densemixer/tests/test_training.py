"""DenseMixer inside real (tiny) training runs."""

from pathlib import Path

import pytest
import torch

from lathe.errors import LatheError
from lathe.testing import base_config, run_training
from lathe_densemixer import plugin


def _run(tmp_path: Path, dense: bool):  # type: ignore[no-untyped-def]
    cfg = base_config(tmp_path, arch="qwen2_moe", plugins=["densemixer"], dense_mixer=dense,
                      max_steps=3, dataset_processes=1, output_dir=str(tmp_path / f"out-{dense}"))
    return run_training(cfg)


def test_same_first_loss_other_router_updates_and_hooks_gone(tmp_path: Path) -> None:
    from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock

    forward = Qwen2MoeSparseMoeBlock.forward
    plain, dense = _run(tmp_path, False), _run(tmp_path, True)
    # the forward pass is unchanged: the first step (same weights, same batch) has the same loss
    assert dense.losses[0] == plain.losses[0]
    routers = [(n, p) for n, p in dense.trainer.model.named_parameters() if n.endswith("mlp.gate.weight")]
    plain_params = dict(plain.trainer.model.named_parameters())
    assert routers and all(not torch.equal(p, plain_params[n]) for n, p in routers)
    # after the run: no hook left, classes and forward as the library defines them
    blocks = [m for m in dense.trainer.model.modules() if isinstance(m, Qwen2MoeSparseMoeBlock)]
    assert blocks and all(type(b) is Qwen2MoeSparseMoeBlock for b in blocks)
    assert all(not b._forward_hooks and not b.gate._forward_hooks for b in blocks)
    assert Qwen2MoeSparseMoeBlock.forward is forward
    assert not plugin._attached


def test_dense_model_is_refused_before_training(tmp_path: Path) -> None:
    cfg = base_config(tmp_path, plugins=["densemixer"], dense_mixer=True, dataset_processes=1)
    with pytest.raises(LatheError, match=r"dense_mixer: true, but LlamaForCausalLM has no mixture-of-experts"):
        run_training(cfg)
    assert not plugin._attached
    assert not (tmp_path / "out" / "model.safetensors").exists()
