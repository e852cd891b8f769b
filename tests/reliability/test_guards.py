"""The non-finite guard and the interrupt handler, on a plain transformers Trainer."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from lathe.testing import tiny_model, tiny_tokenizer
from lathe.train.guards import GracefulInterrupt, NonFiniteError, NonFiniteGuard


class Rows(torch.utils.data.Dataset):
    def __init__(self, n: int = 32):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(5, 500, (n, 16), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class PoisonAt(TrainerCallback):
    """Makes the loss of one step non-finite by scaling the logits by inf."""

    def __init__(self, model: torch.nn.Module, step: int):
        self.step = step
        self.handle = None
        self.model = model

    def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step + 1 == self.step:
            self.handle = self.model.lm_head.register_forward_hook(lambda m, i, o: o * float("inf"))
        elif self.handle is not None:
            self.handle.remove()
            self.handle = None


class Snapshots(TrainerCallback):
    def __init__(self) -> None:
        self.weights: dict[int, torch.Tensor] = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        self.weights[state.global_step] = model.lm_head.weight.detach().clone()


def _trainer(tmp_path: Path, callbacks: list[TrainerCallback], model: torch.nn.Module, steps: int = 5) -> Trainer:
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=steps, per_device_train_batch_size=4, learning_rate=1e-3,
        save_steps=1, logging_steps=1, report_to=[], use_cpu=True, disable_tqdm=True, save_only_model=False,
    )
    return Trainer(model=model, args=args, train_dataset=Rows(), callbacks=callbacks)


def test_non_finite_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    model = tiny_model("llama", tiny_tokenizer())
    trainer = _trainer(tmp_path, [PoisonAt(model, 3), NonFiniteGuard("stop")], model)
    with pytest.raises(NonFiniteError, match="at step 3"):
        trainer.train()
    saved = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert saved == ["checkpoint-1", "checkpoint-2"]
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "out" / "checkpoint-2" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_skip_policy_leaves_the_weights_of_the_bad_step_unchanged(tmp_path: Path) -> None:
    model = tiny_model("llama", tiny_tokenizer())
    guard, snaps = NonFiniteGuard("skip"), Snapshots()
    _trainer(tmp_path, [PoisonAt(model, 3), guard, snaps], model).train()
    assert guard.skipped_steps == [3]
    torch.testing.assert_close(snaps.weights[3], snaps.weights[2], rtol=0, atol=0)
    assert not torch.equal(snaps.weights[4], snaps.weights[3])
    assert all(torch.isfinite(p).all() for p in model.parameters())


class InterruptAt(TrainerCallback):
    def __init__(self, step: int, sig: int):
        self.step, self.sig = step, sig

    def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step + 1 == self.step:
            os.kill(os.getpid(), self.sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_at_the_current_step_and_stops(tmp_path: Path, sig: int) -> None:
    before = signal.getsignal(sig)
    model = tiny_model("llama", tiny_tokenizer())
    interrupt = GracefulInterrupt()
    args_steps = 50
    trainer = _trainer(tmp_path, [InterruptAt(2, sig), interrupt], model, steps=args_steps)
    trainer.args.save_steps = 1000
    trainer.train()
    assert interrupt.received == signal.Signals(sig).name and interrupt.step == 2
    assert trainer.state.global_step == 2
    assert (tmp_path / "out" / "checkpoint-2" / "trainer_state.json").exists()
    assert signal.getsignal(sig) == before


def test_second_sigint_aborts_at_once() -> None:
    interrupt = GracefulInterrupt()
    interrupt.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.received == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        interrupt.uninstall()
