"""Through lathe's real pipeline: CCE trains exactly like the standard loss (torch_compile
implementation), unpacked and packed, with gradient accumulation; conflicts and GPU-only
settings are clear errors."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

from lathe.config import ConfigError, validate
from lathe.errors import LatheError
from lathe.hookspecs import hookimpl
from lathe.plugins import PluginInfo, Plugins
from lathe.testing import base_config, run_training


class GradRecorder(TrainerCallback):
    def __init__(self) -> None:
        self.grads: list[dict[str, torch.Tensor]] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        self.grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})


def _first_step(tmp_path: Path, model_dir: Path, cce: bool, packed: bool, mbs: int, accum: int) -> tuple[float, dict[str, torch.Tensor]]:
    recorder = GradRecorder()
    module = types.ModuleType("recorder")
    module.lathe_callbacks = hookimpl(lambda cfg: [recorder])  # type: ignore[attr-defined]
    names = ["cut_cross_entropy"] if cce else []
    plugins = Plugins([*Plugins.load(names).infos.values(), PluginInfo("recorder", "recorder", "0", module=module)])
    tag = f"{cce}-{packed}-{mbs}-{accum}"
    cfg = base_config(
        tmp_path, base_model=str(model_dir), max_steps=1, micro_batch_size=mbs, gradient_accumulation_steps=accum,
        sample_packing=packed, max_grad_norm=None, plugins=names, output_dir=str(tmp_path / f"out-{tag}"),
        dataset_prepared_path=str(tmp_path / f"prep-{packed}"), dataset_processes=1,
    )
    result = run_training(cfg, plugins)
    assert (result.trainer.lathe_hidden_loss is not None) == cce
    return result.losses[0], recorder.grads[0]


@pytest.mark.parametrize("packed", [False, True])
def test_cce_trains_like_the_standard_loss_with_grad_accumulation(tmp_path: Path, tiny_model_dir: Path, packed: bool) -> None:
    loss0, grads0 = _first_step(tmp_path, tiny_model_dir, cce=False, packed=packed, mbs=4, accum=1)
    for mbs, accum in ((4, 1), (1, 4)):
        loss, grads = _first_step(tmp_path, tiny_model_dir, cce=True, packed=packed, mbs=mbs, accum=accum)
        assert loss == pytest.approx(loss0, rel=1e-4), (mbs, accum)
        assert grads.keys() == grads0.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, grads0[name], rtol=1e-4, atol=1e-6, msg=f"{name} ({mbs}×{accum})")


def _summed_loss(tmp_path: Path, model_dir: Path, packed: bool) -> tuple[float, dict[str, torch.Tensor]]:
    """Σ token losses over the training set through the trainer's compute_loss (num_items = 1)."""
    from lathe.data.prepare import prepare_datasets
    from lathe.models.loading import load_model
    from lathe.models.tokenizer import load_tokenizer
    from lathe.train.run import build_trainer

    plugins = Plugins.load(["cut_cross_entropy"])
    cfg = validate(base_config(
        tmp_path, base_model=str(model_dir), plugins=["cut_cross_entropy"], sample_packing=packed,
        dataset_prepared_path=str(tmp_path / f"prep-{packed}"), dataset_processes=1, sequence_len=256,
    ), plugins)
    tok = load_tokenizer(cfg, plugins)
    data = prepare_datasets(cfg, tok, plugins)
    model = load_model(cfg, tok, plugins)
    trainer = build_trainer(cfg, plugins, model, tok, data.train, None)
    total = torch.zeros(())
    for start in range(0, len(data.train), 4):
        batch = trainer.data_collator([data.train[i] for i in range(start, min(start + 4, len(data.train)))])
        if packed:
            assert "position_ids" in batch
        total = total + trainer.compute_loss(model, batch, num_items_in_batch=torch.tensor(1))
    total.backward()
    return float(total.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_packed_equals_unpacked_with_cce(tmp_path: Path, tiny_model_dir: Path) -> None:
    loss, grads = _summed_loss(tmp_path, tiny_model_dir, packed=False)
    packed_loss, packed_grads = _summed_loss(tmp_path, tiny_model_dir, packed=True)
    assert packed_loss == pytest.approx(loss, rel=1e-4)
    for name, grad in grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-3, atol=1e-5, msg=name)


def test_cce_and_kd_conflict_at_validation(tmp_path: Path) -> None:
    pytest.importorskip("lathe_kd")
    names = ["cut_cross_entropy", "kd"]
    with pytest.raises(ConfigError, match=r"'cut_cross_entropy' \(cut_cross_entropy\) and 'kd' \(kd_trainer\)"):
        validate({**base_config(tmp_path), "plugins": names}, Plugins.load(names))


def _cfg(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {**base_config(tmp_path, max_steps=1), "plugins": ["cut_cross_entropy"], **overrides}


def test_cce_kernel_needs_half_precision_at_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cut_cross_entropy_impl: cce needs bf16 or fp16"):
        validate(_cfg(tmp_path, cut_cross_entropy_impl="cce"), Plugins.load(["cut_cross_entropy"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cce_kernel_without_cuda_is_a_clear_error_at_model_load(tmp_path: Path) -> None:
    with pytest.raises(LatheError, match="cut_cross_entropy_impl: cce runs a Triton kernel that needs a CUDA GPU"):
        run_training(_cfg(tmp_path, cut_cross_entropy_impl="cce", bf16=True))


def test_disabled_cce_leaves_the_standard_loss(tmp_path: Path) -> None:
    result = run_training(_cfg(tmp_path, cut_cross_entropy=False))
    assert result.trainer.lathe_hidden_loss is None
