"""Activation offloading modes (true, legacy, disk): the same loss and gradients as without,
Axolotl's spellings map to them, and disk offload leaves no folder behind, even when a run fails."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from lathe.config import validate
from lathe.config.load import ConfigError
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training
from lathe.testing.models import tiny_model
from lathe.train import offload
from lathe.train.args import build_training_arguments
from lathe.train.offload import offload_mode, offloading
from tests.train.conftest import plugin


def _step(model: Any, mode: str | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    ids = torch.randint(0, 500, (2, 17), generator=torch.Generator().manual_seed(0))
    with offloading(mode, min_bytes=0):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("mode", ["stream", "legacy", "disk"])
def test_every_mode_gives_the_loss_and_gradients_of_no_offloading(mode: str, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model()
    loss_ref, grads_ref = _step(model, None)
    written: list[Path] = []
    real_pack = offload.DiskOffload.pack
    monkeypatch.setattr(offload.DiskOffload, "pack", lambda self, t, m: _spy(written, real_pack(self, t, m)))
    loss, grads = _step(model, mode)
    assert torch.equal(loss, loss_ref)
    for name in grads:
        assert torch.equal(grads[name], grads_ref[name]), name
    if mode == "disk":
        assert written and all(not p.exists() for p in written)  # tensors went to files, and the files are gone
    assert list(private_tmp.glob("lathe-offload-*")) == []


def _spy(written: list[Path], packed: Any) -> Any:
    if isinstance(packed, tuple):
        written.append(packed[0])
    return packed


def test_disk_offload_removes_its_folder_when_the_step_fails(private_tmp: Path) -> None:
    model = tiny_model()
    with pytest.raises(RuntimeError, match="boom"), offloading("disk", min_bytes=0):
        model(input_ids=torch.tensor([[1, 2, 3]])).logits.sum()
        assert len(list(next(private_tmp.glob("lathe-offload-*")).iterdir())) > 0
        raise RuntimeError("boom")
    assert list(private_tmp.glob("lathe-offload-*")) == []


def test_a_failing_disk_offload_run_leaves_nothing_behind(tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offload, "MIN_BYTES", 0)
    folders: list[list[Path]] = []

    def post_model_load(model: Any) -> None:
        calls = iter(range(100))

        def hook(module: Any, args: Any, output: Any) -> None:
            folders.append(list(private_tmp.glob("lathe-offload-*")))
            if next(calls) == 2:
                raise RuntimeError("the run fails mid-step")

        model.get_base_model().model.layers[-1].register_forward_hook(hook)

    plugins = Plugins.from_modules({"failing": plugin(lathe_post_model_load=post_model_load)})
    raw = base_config(tmp_path, adapter="lora", lora_target_linear=True, gradient_checkpointing="offload_disk", max_steps=3)
    with pytest.raises(RuntimeError, match="the run fails mid-step"):
        run_training(raw, plugins)
    assert any(folders) and list(private_tmp.glob("lathe-offload-*")) == []


def test_axolotl_spellings_choose_the_mode(tmp_path: Path) -> None:
    def mode(**keys: Any) -> str | None:
        return offload_mode(validate(base_config(tmp_path, **keys), Plugins()))

    assert mode() is None
    assert mode(activation_offloading=True) == "stream"
    assert mode(activation_offloading="legacy", gradient_checkpointing=True) == "legacy"
    assert mode(activation_offloading="disk") == "disk"
    assert mode(gradient_checkpointing="offload") == "stream"
    assert mode(gradient_checkpointing="offload_disk") == "disk"
    assert offload_mode(SimpleNamespace(activation_offloading=False, gradient_checkpointing=True)) is None
    with pytest.raises(ConfigError, match="activation_offloading: hidden_states .* is not available in lathe"):
        mode(activation_offloading="hidden_states")
    with pytest.raises(ConfigError, match="gradient_checkpointing: offload_disk already chooses"):
        mode(activation_offloading="legacy", gradient_checkpointing="offload_disk")


def test_gc_keys_collect_on_their_steps_and_gc_steps_means_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collected: list[int] = []
    monkeypatch.setattr(offload.GarbageCollection, "collect", staticmethod(lambda: collected.append(1)))
    result = run_training(base_config(tmp_path, gc_collect_steps=2, torch_empty_cache_steps=3, max_steps=4))
    assert len(collected) == 3  # steps 2 and 4, and the (last) epoch's end
    assert result.trainer.args.torch_empty_cache_steps == 3

    def cfg(**keys: Any) -> Any:
        return validate(base_config(tmp_path, **keys), Plugins())

    assert offload.gc_intervals(cfg(gc_steps=5)) == (5, 5)
    assert offload.gc_intervals(cfg(gc_steps=-1)) == (None, -1)
    assert build_training_arguments(cfg(gc_steps=5), Plugins(), 32, False).torch_empty_cache_steps == 5
    with pytest.raises(ConfigError, match="gc_steps is the deprecated spelling .* remove it"):
        cfg(gc_steps=5, gc_collect_steps=2)

    epoch_only = offload.GarbageCollection(-1)
    collected.clear()
    for step, evaluate in ((1, False), (2, True)):
        epoch_only.on_step_end(None, SimpleNamespace(global_step=step), SimpleNamespace(should_evaluate=evaluate))
    epoch_only.on_epoch_end(None, None, None)
    assert len(collected) == 2  # before the evaluation and at the epoch end
