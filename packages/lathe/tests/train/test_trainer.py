"""The trainer lathe builds: loss normalisation over the accumulated batch, optimizers,
schedulers (LR values against hand-computed ones), eval/save cadence, early stopping."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

from lathe.models.loading import load_model
from lathe.testing import tiny_tokenizer
from lathe.train.run import build_trainer
from tests.train.conftest import make_plugins

IGNORE = -100


def _rows(n: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """Rows of different lengths whose trained spans differ in size."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        length = 6 + 3 * (i % 4)
        ids = torch.randint(10, 500, (length,), generator=gen).tolist()
        prompt = 2 + (i % 3)
        rows.append({"input_ids": ids, "labels": [IGNORE] * prompt + ids[prompt:]})
    return rows


def pad_collator(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), 0)
    labels = torch.full((len(rows), width), IGNORE)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(r["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class GradRecorder(TrainerCallback):
    """The gradients the optimizer is about to apply, per step."""

    def __init__(self) -> None:
        self.grads: list[dict[str, torch.Tensor]] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        self.grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})


def _trainer(cfg, rows, eval_rows=None, **hooks):  # type: ignore[no-untyped-def]
    plugins = make_plugins(lathe_collator=lambda cfg, tokenizer: pad_collator, **hooks)
    tok = tiny_tokenizer()
    model = load_model(cfg, tok, plugins)
    eval_ds = Dataset.from_list(eval_rows) if eval_rows else None
    return build_trainer(cfg, plugins, model, tok, Dataset.from_list(rows), eval_ds)


def test_loss_and_gradients_equal_for_equal_effective_batch(cfg_of) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(4)
    results = []
    for mbs, accum in ((4, 1), (1, 4), (2, 2)):
        recorder = GradRecorder()
        cfg = cfg_of(micro_batch_size=mbs, gradient_accumulation_steps=accum, max_steps=1, max_grad_norm=0)
        trainer = _trainer(cfg, rows, lathe_callbacks=lambda cfg, r=recorder: [r])
        trainer.train()
        loss = [h["loss"] for h in trainer.state.log_history if "loss" in h][0]
        results.append((loss, recorder.grads[0]))

    # by hand: sum of token losses over the whole batch / trained tokens of the whole batch
    model = load_model(cfg_of(), tiny_tokenizer(), make_plugins())
    total, count = torch.tensor(0.0), 0
    for row in rows:
        logits = model(torch.tensor([row["input_ids"]])).logits[0, :-1]
        target = torch.tensor(row["labels"][1:])
        total = total + torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE, reduction="sum")
        count += int((target != IGNORE).sum())
    (total / count).backward()
    reference = {n: p.grad for n, p in model.named_parameters()}

    for loss, grads in results:
        assert loss == pytest.approx(float(total / count), rel=1e-4)
        assert grads.keys() == reference.keys()  # every parameter's gradient was recorded and compared
        for name, grad in grads.items():
            torch.testing.assert_close(grad, reference[name], rtol=1e-4, atol=1e-6, msg=name)


def _lrs(cfg_of, steps: int = 10, **overrides):  # type: ignore[no-untyped-def]
    trainer = _trainer(cfg_of(**overrides), _rows(4))
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    lrs = []
    for _ in range(steps):
        lrs.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return lrs


def test_schedulers_match_hand_computed_lr(cfg_of) -> None:  # type: ignore[no-untyped-def]
    lr, warm, n = 1e-3, 2, 10

    def cosine(s: int, floor: float = 0.0) -> float:
        if s < warm:
            return lr * s / warm
        return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (s - warm) / (n - warm))))

    expected = {
        "cosine": [cosine(s) for s in range(n)],
        "linear": [lr * s / warm if s < warm else lr * (n - s) / (n - warm) for s in range(n)],
        "constant_with_warmup": [lr * min(1.0, s / warm) for s in range(n)],
    }
    for name, values in expected.items():
        got = _lrs(cfg_of, lr_scheduler=name, warmup_steps=warm, learning_rate=lr)
        assert got == pytest.approx(values, rel=1e-6, abs=1e-12), name
    assert _lrs(cfg_of, lr_scheduler="constant", learning_rate=lr) == pytest.approx([lr] * n)
    floor = _lrs(cfg_of, lr_scheduler="cosine", cosine_min_lr_ratio=0.1, warmup_steps=warm, learning_rate=lr)
    assert floor == pytest.approx([cosine(s, 0.1) for s in range(n)], rel=1e-6)
    ratio = _lrs(cfg_of, lr_scheduler="linear", warmup_ratio=0.2, learning_rate=lr)
    assert ratio == pytest.approx(expected["linear"], rel=1e-6, abs=1e-12)  # 0.2 × 10 steps = 2 warmup steps


def test_optimizers_by_name_and_by_plugin(cfg_of) -> None:  # type: ignore[no-untyped-def]
    from transformers.optimization import Adafactor

    def opt(**kw):  # type: ignore[no-untyped-def]
        trainer = _trainer(cfg_of(**kw), _rows(4))
        return trainer.create_optimizer()

    adam = opt(optimizer="adamw_torch", adam_beta1=0.8, adam_beta2=0.9, adam_epsilon=1e-6, weight_decay=0.1)
    assert isinstance(adam, torch.optim.AdamW)
    assert adam.defaults["betas"] == (0.8, 0.9) and adam.defaults["eps"] == 1e-6
    assert {g["weight_decay"] for g in adam.param_groups} == {0.1, 0.0}  # no decay on norms/biases
    assert opt(optimizer="adamw_torch_fused").defaults["fused"] is True
    assert isinstance(opt(optimizer="sgd"), torch.optim.SGD)
    assert isinstance(opt(optimizer="adafactor"), Adafactor)

    mine = {}

    def lathe_optimizer(cfg, model):  # type: ignore[no-untyped-def]
        mine["opt"] = torch.optim.SGD(model.parameters(), lr=0.5)
        return mine["opt"]

    def lathe_lr_scheduler(cfg, optimizer, num_training_steps):  # type: ignore[no-untyped-def]
        mine["sched"] = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return mine["sched"]

    trainer = _trainer(cfg_of(), _rows(4), lathe_optimizer=lathe_optimizer, lathe_lr_scheduler=lathe_lr_scheduler)
    trainer.create_optimizer_and_scheduler(num_training_steps=4)
    assert trainer.optimizer is mine["opt"] and trainer.lr_scheduler is mine["sched"]


def test_eval_and_save_cadence_with_total_limit(cfg_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cadence"
    cfg = cfg_of(val_set_size=0.1, eval_steps=2, save_steps=3, max_steps=6, micro_batch_size=2, output_dir=str(out))
    trainer = _trainer(cfg, _rows(16), eval_rows=_rows(4, seed=1))
    trainer.train()
    assert [h["step"] for h in trainer.state.log_history if "eval_loss" in h] == [2, 4, 6]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    assert (out / "checkpoint-6" / "lathe_checkpoint_complete.json").is_file()

    limited = tmp_path / "limited"
    cfg = cfg_of(val_set_size=0.1, evals_per_epoch=4, saves_per_epoch=2, save_total_limit=1, num_epochs=1,
                 max_steps=None, micro_batch_size=2, output_dir=str(limited))
    trainer = _trainer(cfg, _rows(16), eval_rows=_rows(4, seed=1))
    trainer.train()  # 8 steps per epoch: eval every 2, save every 4
    assert [h["step"] for h in trainer.state.log_history if "eval_loss" in h] == [2, 4, 6, 8]
    assert [p.name for p in limited.glob("checkpoint-*")] == ["checkpoint-8"]


def test_early_stopping_when_eval_loss_stops_improving(cfg_of) -> None:  # type: ignore[no-untyped-def]
    cfg = cfg_of(val_set_size=0.1, eval_steps=1, early_stopping_patience=2, max_steps=10, micro_batch_size=2)
    frozen = {"lathe_optimizer": lambda cfg, model: torch.optim.SGD(model.parameters(), lr=0.0)}
    trainer = _trainer(cfg, _rows(16), eval_rows=_rows(4, seed=1), **frozen)
    trainer.train()
    assert trainer.state.global_step == 3  # best at 1, no improvement at 2 and 3


def test_tokens_per_second_counts_all_and_trained_tokens(cfg_of) -> None:  # type: ignore[no-untyped-def]
    from lathe.train.trainer import count_tokens

    batch = pad_collator(_rows(4))
    total, trained = count_tokens(batch)
    assert total == sum(len(r["input_ids"]) for r in _rows(4))
    assert trained == sum(sum(1 for x in r["labels"][1:] if x != IGNORE) for r in _rows(4))
    trainer = _trainer(cfg_of(max_steps=2), _rows(8))
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert all(h["tokens_per_second"] > h["trained_tokens_per_second"] > 0 for h in logged)
