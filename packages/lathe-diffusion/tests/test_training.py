"""Diffusion training through lathe's real pipeline: metrics, samples, toy-pattern learning, inference."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from lathe.testing import base_config, run_training, write_jsonl
from lathe.testing.data import _WORDS

CYCLE = _WORDS[:12]


def _cyclic_rows(n: int, seed: int, length: int = 16) -> list[dict[str, str]]:
    """Each row walks the fixed word cycle from a random start: every word follows from its neighbours."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        start = rng.randrange(len(CYCLE))
        rows.append({"text": " ".join(CYCLE[(start + i) % len(CYCLE)] for i in range(length))})
    return rows


def _config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    data = write_jsonl(_cyclic_rows(64, 0), tmp_path / "data" / "cycle.jsonl")
    cfg = base_config(
        tmp_path, plugins=["diffusion"], datasets=[{"path": str(data), "type": "completion"}],
        dataset_processes=1, sequence_len=64,
    )
    cfg.update(overrides)
    return cfg


def test_metrics_and_samples_are_logged(tmp_path: Path) -> None:
    cfg = _config(tmp_path, max_steps=4, diffusion={
        "generation_interval": 2, "num_generation_samples": 2, "generation_steps": 3, "generation_max_length": 10,
    })
    result = run_training(cfg)
    logged = [h for h in result.trainer.state.log_history if "loss" in h]
    for key in ("accuracy", "mask_ratio", "num_masked_tokens", "avg_p_mask", "ce_loss", "importance_weight_avg"):
        assert all(key in h for h in logged), key
    p = [h["avg_p_mask"] for h in logged]
    assert all(0.1 <= x <= 0.9 for x in p)
    callback = next(c for c in result.trainer.callback_handler.callbacks if hasattr(c, "samples"))
    assert [s.step for s in callback.samples] == [2, 2, 4, 4]
    for s in callback.samples:
        assert "<|mask|>" in s.masked and "<|mask|>" not in s.generated
        assert len(s.original.split()) <= 10  # generation_max_length tokens (one word is one token or more)


def test_no_samples_when_disabled(tmp_path: Path) -> None:
    result = run_training(_config(tmp_path, max_steps=2, diffusion={"generate_samples": False, "generation_interval": 1}))
    assert not any(hasattr(c, "samples") for c in result.trainer.callback_handler.callbacks)


def test_a_tiny_model_learns_to_fill_a_toy_pattern(tmp_path: Path) -> None:
    """Trained briefly on word cycles (packed), it restores masked words far above chance (1/vocab)."""
    from lathe.config import validate
    from lathe.infer import run_inference
    from lathe.models.trained import load_trained
    from lathe.plugins import Plugins
    from lathe_diffusion.generate import unmask

    cfg = _config(tmp_path, max_steps=300, micro_batch_size=8, learning_rate=3e-3, sample_packing=True,
                  diffusion={"generate_samples": False, "generation_steps": 8})
    result = run_training(cfg)
    assert result.losses[-1] < result.losses[0] / 2
    plugins = Plugins.load(["diffusion"])
    config = validate(cfg, plugins)
    model, tok = load_trained(config, plugins)
    mask_id = tok.convert_tokens_to_ids("<|mask|>")
    g = torch.Generator().manual_seed(1)
    correct = total = 0
    for row in _cyclic_rows(16, seed=99):
        ids = torch.tensor(tok(row["text"], add_special_tokens=False)["input_ids"])
        hide = torch.rand(len(ids), generator=g) < 0.3
        hide[0] = True
        noisy = torch.where(hide, torch.full_like(ids, mask_id), ids)
        filled = unmask(model, noisy[None], mask_id, steps=8).ids[0]
        correct += int((filled[hide] == ids[hide]).sum())
        total += int(hide.sum())
    assert correct / total > 0.6, (correct, total)  # chance is about 1/len(tok) = 0.002
    # and `lathe inference` finds the plugin's commands through the contract
    answers = run_inference(config, plugins, prompt=":complete 3 " + " ".join(CYCLE[:6]))
    assert len(answers) == 1 and "<|mask|>" not in answers[0]


def test_eval_metrics_lora_and_the_accumulated_normaliser(tmp_path: Path) -> None:
    """With LoRA and an eval set: eval_ metrics are logged, and each optimizer step divides by the
    eligible tokens of all its micro-batches."""
    cfg = _config(tmp_path, max_steps=2, adapter="lora", lora_target_linear=True, lora_r=4, lora_alpha=8,
                  val_set_size=0.25, eval_steps=2, gradient_accumulation_steps=2, micro_batch_size=2,
                  diffusion={"generate_samples": False})
    result = run_training(cfg)
    evals = [h for h in result.trainer.state.log_history if "eval_loss" in h]
    assert evals and all(k in evals[-1] for k in ("eval_accuracy", "eval_mask_ratio", "eval_ce_loss"))
    trainer = result.trainer
    first, second = trainer.evaluate(), trainer.evaluate()
    assert first["eval_loss"] == second["eval_loss"]  # the eval masks are seeded: losses compare across evals
    batches = list(trainer.get_train_dataloader())[:2]
    _, n = trainer.get_batch_samples(iter(batches), 2, torch.device("cpu"))
    eligible = sum(int(((b["labels"] != -100) & ~torch.isin(b["input_ids"], torch.tensor(trainer.special_ids))).sum())
                   for b in batches)
    assert int(n) == eligible
