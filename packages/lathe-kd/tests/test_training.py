"""Distillation through lathe's real pipeline: strategy, packing, collator, trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lathe.testing import base_config, chat_rows, run_training, write_jsonl

K = 8


def _teacher_file(tmp_path: Path, teacher: torch.nn.Module, tok: Any, name: str, n: int = 24) -> Path:
    """Chat rows with the teacher's top-K per token (entry j scores token j; ids and 'token_id:N' mixed)."""
    rows = chat_rows(n, seed=3)
    for row in rows:
        text = tok.apply_chat_template(row["messages"], tokenize=False)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            lp = torch.log_softmax(teacher(input_ids=torch.tensor([ids])).logits[0].double(), -1)
        top_lp, top_ids = lp.topk(K, dim=-1)
        entries: list[Any] = [None]
        for j in range(1, len(ids)):
            entries.append([{"token": f"token_id:{t}" if i % 2 else int(t), "logprob": float(v)}
                            for i, (t, v) in enumerate(zip(top_ids[j - 1].tolist(), top_lp[j - 1].tolist(), strict=True))])
        row["logprobs"] = entries
    return write_jsonl(rows, tmp_path / "data" / name)


def _model_and_tokenizer(cfg: dict[str, Any]):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = cfg["base_model"]
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _config(tmp_path: Path, data: Path, **overrides: Any) -> dict[str, Any]:
    cfg = base_config(tmp_path, plugins=["kd"], dataset_processes=1, sequence_len=256,
                      datasets=[{"path": str(data), "type": "kd.chat_template"}])
    cfg.update(overrides)
    return cfg


def _peaked_teacher(tmp_path: Path) -> torch.nn.Module:
    from lathe.testing import tiny_model, tiny_tokenizer

    teacher = tiny_model("llama", tiny_tokenizer(), seed=7).eval()
    with torch.no_grad():
        teacher.get_output_embeddings().weight.mul_(8.0)
    return teacher


def _trainer(cfg_dict: dict[str, Any]):  # type: ignore[no-untyped-def]
    """lathe's trainer for this config, built through the public run steps (no training)."""
    from lathe.config import validate
    from lathe.data.prepare import prepare_datasets
    from lathe.models.loading import load_model
    from lathe.models.tokenizer import load_tokenizer
    from lathe.plugins import Plugins
    from lathe.train.run import build_trainer

    plugins = Plugins.load(cfg_dict["plugins"])
    cfg = validate(cfg_dict, plugins)
    tok = load_tokenizer(cfg, plugins)
    data = prepare_datasets(cfg, tok, plugins)
    model = load_model(cfg, tok, plugins)
    return build_trainer(cfg, plugins, model, tok, data.train, None)


def _dataset_sums(trainer) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Σ KD and Σ CE over the whole training set (num_items_in_batch = 1 turns means into sums)."""
    model = trainer.model.train()
    total = 0.0
    for batch in trainer.get_train_dataloader():
        assert torch.isfinite(batch["teacher_logprobs"]).any()  # the teacher rows reached the batch
        with torch.no_grad():
            total += float(trainer.compute_loss(model, batch, num_items_in_batch=1))
    kd = sum(trainer.lathe_metrics.recorded("train", "kd_loss"))
    return total, kd


def test_alignment_through_the_pipeline_teacher_equal_to_student(tmp_path: Path) -> None:
    """The teacher is the student itself (top-K, unnormalised, T = 1): forward KL is exactly 0 only
    if every teacher row reaches the student position that predicts its token, packed or not."""
    cfg = _config(tmp_path, Path("unused"))
    student, tok = _model_and_tokenizer(cfg)
    data = _teacher_file(tmp_path, student, tok, "self.jsonl")
    for packing in (False, True):
        trainer = _trainer(_config(tmp_path, data, kd_normalize_topk=False, sample_packing=packing,
                                   dataset_prepared_path=str(tmp_path / f"prep-{packing}")))
        _, kd = _dataset_sums(trainer)
        assert abs(kd) < 1e-4, (packing, kd)


def test_packed_loss_equals_unpacked_loss(tmp_path: Path) -> None:
    cfg = _config(tmp_path, Path("unused"))
    data = _teacher_file(tmp_path, _peaked_teacher(tmp_path), _model_and_tokenizer(cfg)[1], "teacher.jsonl")
    sums = {}
    for packing in (False, True):
        trainer = _trainer(_config(tmp_path, data, sample_packing=packing, kd_ce_alpha=0.5, kd_beta=0.5,
                                   kd_temperature=2.0, dataset_prepared_path=str(tmp_path / f"prep-{packing}")))
        sums[packing] = _dataset_sums(trainer)
    assert sums[False][1] > 0.1
    assert sums[True][0] == pytest.approx(sums[False][0], rel=1e-4)


def _kl_to_teacher(model: torch.nn.Module, cfg_dict: dict[str, Any]) -> float:
    trainer = _trainer(cfg_dict)
    trainer.model = model
    return _dataset_sums(trainer)[1]


def test_student_trained_toward_synthetic_teacher_lowers_its_kl(tmp_path: Path) -> None:
    cfg = _config(tmp_path, Path("unused"))
    student, tok = _model_and_tokenizer(cfg)
    data = _teacher_file(tmp_path, _peaked_teacher(tmp_path), tok, "teacher.jsonl")
    cfg = _config(tmp_path, data, max_steps=40, learning_rate=3e-3, kd_ce_alpha=0.0, sample_packing=True)
    before = _kl_to_teacher(student.train(), cfg)
    result = run_training(cfg)
    assert "kd_loss" in result.trainer.state.log_history[0]
    after = _kl_to_teacher(result.trainer.model, {**cfg, "output_dir": str(tmp_path / "eval-out")})
    assert after < 0.5 * before, (before, after)


def test_kd_trainer_false_trains_plain_cross_entropy_on_the_same_data(tmp_path: Path) -> None:
    cfg = _config(tmp_path, Path("unused"))
    data = _teacher_file(tmp_path, _peaked_teacher(tmp_path), _model_and_tokenizer(cfg)[1], "teacher.jsonl", n=8)
    result = run_training(_config(tmp_path, data, max_steps=2, kd_trainer=False))
    assert result.trainer.lathe_hidden_loss is None
    assert "kd_loss" not in result.trainer.state.log_history[0]


def test_distillation_with_lora_and_gradient_accumulation(tmp_path: Path) -> None:
    cfg = _config(tmp_path, Path("unused"))
    data = _teacher_file(tmp_path, _peaked_teacher(tmp_path), _model_and_tokenizer(cfg)[1], "teacher.jsonl", n=8)
    result = run_training(_config(tmp_path, data, max_steps=2, adapter="lora", lora_target_linear=True, lora_r=4,
                                  lora_alpha=8, micro_batch_size=2, gradient_accumulation_steps=2, kd_ce_alpha=0.2,
                                  val_set_size=0.25, eval_steps=2))
    logged = [h for h in result.trainer.state.log_history if "loss" in h]
    assert logged and all(h["kd_loss"] > 0 and h["ce_loss"] > 0 for h in logged)
    evals = [h for h in result.trainer.state.log_history if "eval_loss" in h]
    assert evals and evals[-1]["eval_kd_loss"] > 0
