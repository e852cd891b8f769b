"""lathe-rl's losses equal TRL's (trl>=1.16, the issue's reference) on the same batch.

DPO, KTO and reward models: TRL's own trainer is built on the tiny models (offline, a one-row
dataset it never trains on) and its loss function runs on the batch lathe's collator made, so
log-probability extraction and loss are compared together. ORPO, CPO and SimPO live in
``trl.experimental`` with the loss as a method of fixed log-probabilities: it is called with a
stand-in for the trainer's settings. Known differences, not tested here: TRL's ``sigmoid`` DPO
ignores ``label_smoothing`` (lathe's ``dpo_label_smoothing`` is cDPO) and TRL's WPO weight is
not clamped at 1.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import trl  # lathe-rl's test extra (trl>=1.16): the reference implementation
from datasets import Dataset
from test_losses import KTO, _model, _pair_rows, _trainer

from lathe.data.strategies import IGNORE
from lathe.testing import tiny_tokenizer
from lathe_rl import losses
from lathe_rl.collate import PreferenceCollator


def _trl_inputs(batch: dict[str, Any], rows: slice = slice(None)) -> dict[str, torch.Tensor]:
    labels = batch["labels"][rows]
    return {"input_ids": batch["input_ids"][rows], "attention_mask": batch["attention_mask"][rows],
            "completion_mask": (labels != IGNORE).long()}


def _trl_trainer(trainer_cls: Any, config: Any, model: torch.nn.Module, tmp_path: Path, settings: dict[str, Any],
                 **kwargs: Any) -> Any:
    data = Dataset.from_dict({"prompt": ["a b"], "chosen": ["c"], "rejected": ["d"], "completion": ["c"],
                              "label": [True]})
    args = config(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, **settings)  # fp32 as ours
    return trainer_cls(model=model, args=args, train_dataset=data, processing_class=tiny_tokenizer(), **kwargs)


@pytest.mark.parametrize(("method", "loss_type"), [("dpo", "sigmoid"), ("ipo", "ipo")])
def test_dpo_and_ipo_equal_trl(tmp_path: Path, method: str, loss_type: str) -> None:
    beta = 0.3
    batch = PreferenceCollator(pad_id=0, sequence_len=64)(_pair_rows())
    policy, ref = _model(0), _model(1)
    ours, _ = _trainer(method, ref, beta=beta).preference_loss(policy, batch)
    theirs = _trl_trainer(trl.DPOTrainer, trl.DPOConfig, policy, tmp_path, {"beta": beta, "loss_type": [loss_type]},
                          ref_model=ref)
    assert float(ours) == pytest.approx(float(theirs._compute_loss(policy, _trl_inputs(batch), False)), rel=1e-5)


def test_kto_equals_trl(tmp_path: Path) -> None:
    beta, wd, wu = 0.4, 1.5, 0.6
    rows = [{"input_ids": p + c, "labels": [IGNORE] * len(p) + c, "kto_label": [int(good)],
             "completion_start": [len(p)]} for p, c, good in KTO]
    batch = PreferenceCollator(pad_id=0, sequence_len=64)(rows)
    policy, ref = _model(0), _model(5)
    ours, _ = _trainer("kto", ref, beta=beta, desirable_weight=wd, undesirable_weight=wu).preference_loss(policy, batch)
    n = len(KTO)
    main, kl = _trl_inputs(batch, slice(0, n)), _trl_inputs(batch, slice(n, None))
    inputs = {**main, "KL_input_ids": kl["input_ids"], "KL_attention_mask": kl["attention_mask"],
              "KL_completion_mask": kl["completion_mask"], "label": batch["kto_label"]}
    theirs = _trl_trainer(trl.KTOTrainer, trl.KTOConfig, policy, tmp_path,
                          {"beta": beta, "desirable_weight": wd, "undesirable_weight": wu}, ref_model=ref)
    assert float(ours) == pytest.approx(float(theirs._compute_loss(policy, inputs, False)), rel=1e-5)


def test_reward_model_loss_equals_trl(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from lathe.testing import write_tiny_model
    from lathe_rl.reward import RewardTrainer

    write_tiny_model(tmp_path / "m", "llama")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m", num_labels=1)
    pad = tiny_tokenizer().pad_token_id  # the score is read at the last token that is not padding
    model.config.pad_token_id = pad
    batch = PreferenceCollator(pad_id=pad, sequence_len=64)(_pair_rows())
    me = SimpleNamespace(settings=SimpleNamespace(center_rewards=0.01))
    ours, _ = RewardTrainer.preference_loss(me, model, batch)  # type: ignore[arg-type]
    theirs = _trl_trainer(trl.RewardTrainer, trl.RewardConfig, model, tmp_path / "o", {"center_rewards_coefficient": 0.01})
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    assert float(ours) == pytest.approx(float(theirs.compute_loss(model, inputs)), rel=1e-5)


# fixed per-pair log-probabilities (summed for CPO, per-token means for ORPO and SimPO; all < 0)
CHOSEN = torch.tensor([-1.2, -0.4, -2.5, -0.9])
REJECTED = torch.tensor([-1.0, -1.7, -0.6, -3.1])
CPU = SimpleNamespace(device="cpu")


def test_orpo_equals_trl() -> None:
    from trl.experimental.orpo import ORPOTrainer

    lam, nll = 0.25, torch.tensor(0.8)
    ratio_terms = ORPOTrainer.odds_ratio_loss(SimpleNamespace(beta=lam, accelerator=CPU), CHOSEN, REJECTED)[0]
    theirs = nll - ratio_terms.mean()  # ORPOTrainer.get_batch_loss_metrics: policy_nll_loss - losses.mean()
    assert float(losses.orpo_loss(CHOSEN, REJECTED, nll, lam).mean()) == pytest.approx(float(theirs), rel=1e-6)


@pytest.mark.parametrize("loss_type", ["sigmoid", "simpo"])
def test_cpo_and_simpo_equal_trl(loss_type: str) -> None:
    from trl.experimental.cpo import CPOTrainer

    beta, gamma, alpha, nll = 2.0, 0.8, 0.5, torch.tensor(0.8)
    settings = SimpleNamespace(beta=beta, simpo_gamma=gamma, label_smoothing=0.0, loss_type=loss_type, alpha=0.0,
                               accelerator=CPU)
    per_pair = CPOTrainer.cpo_loss(settings, CHOSEN, REJECTED)[0]
    theirs = per_pair.mean() + alpha * nll  # CPOTrainer.get_batch_loss_metrics: losses.mean() + cpo_alpha * nll
    if loss_type == "simpo":
        ours = losses.simpo_loss(CHOSEN, REJECTED, nll, beta, gamma, alpha)
    else:
        ours = losses.cpo_loss(CHOSEN, REJECTED, nll, beta, alpha)
    assert float(ours.mean()) == pytest.approx(float(theirs), rel=1e-6)
