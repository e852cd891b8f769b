"""Each method's loss equals a hand computation on a fixed batch.

The hand side recomputes every sequence's log-probability token by token from the model's
logits and applies the paper's formula in plain Python floats; the trainer side is
``PreferenceTrainer.preference_loss`` on the collated batch.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from lathe.data.strategies import IGNORE
from lathe_rl.collate import PreferenceCollator
from lathe_rl.trainer import Settings, trainer_for

PAIRS = [  # (prompt ids, chosen ids, rejected ids)
    ([5, 9, 12], [20, 21, 2], [30, 2]),
    ([7, 8], [40, 2], [41, 42, 43, 2]),
]
KTO = [([5, 9, 12], [20, 21, 2], True), ([7, 8], [41, 42, 2], False), ([3, 4, 6], [50, 2], True)]


def _model(seed: int) -> torch.nn.Module:
    from lathe.testing import tiny_model

    return tiny_model("llama", seed=seed).eval()


def _pair_rows() -> list[dict[str, Any]]:
    return [{"input_ids": p + c, "labels": [IGNORE] * len(p) + c, "rejected_input_ids": p + r,
             "rejected_labels": [IGNORE] * len(p) + r} for p, c, r in PAIRS]


def _seq_logp(model: torch.nn.Module, prompt: list[int], completion: list[int]) -> tuple[float, int]:
    """Sum of log p(token | tokens before) over the completion, one position at a time."""
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits[0].double().log_softmax(-1)
    total = sum(float(logprobs[len(prompt) + j - 1, tok]) for j, tok in enumerate(completion))
    return total, len(completion)


def _trainer(method: str, ref: torch.nn.Module | None = None, **settings: Any) -> Any:
    class Cfg:  # the config attributes Settings reads
        rl = method
        trl = rl_beta = dpo_beta = orpo_alpha = dpo_label_smoothing = dpo_use_weighting = None
        simpo_gamma = cpo_alpha = kto_desirable_weight = kto_undesirable_weight = ref_model = None
        center_rewards_coefficient = reward_model = process_reward_model = None

    cls = trainer_for(Cfg)
    cls.settings = Settings(**{**vars(cls.settings), **settings})
    trainer = object.__new__(cls)  # the loss needs no TrainingArguments
    trainer.ref_model = ref
    return trainer


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _log_sig(x: float) -> float:
    return math.log(_sig(x))


def _pairs_by_hand(model: torch.nn.Module) -> list[tuple[float, float, int, int]]:
    out = []
    for p, c, r in PAIRS:
        (pc, nc), (pr, nr) = _seq_logp(model, p, c), _seq_logp(model, p, r)
        out.append((pc, pr, nc, nr))
    return out


def _loss(method: str, ref: torch.nn.Module | None = None, rows: Any = None, **settings: Any) -> float:
    policy = _model(0)
    batch = PreferenceCollator(pad_id=0, sequence_len=64)(rows if rows is not None else _pair_rows())
    with torch.no_grad():
        loss, _ = _trainer(method, ref, **settings).preference_loss(policy, batch)
    return float(loss)


def _nll(pairs: list[tuple[float, float, int, int]]) -> float:
    return -sum(pc for pc, _, _, _ in pairs) / sum(nc for _, _, nc, _ in pairs)


def test_dpo_with_label_smoothing() -> None:
    beta, eps = 0.3, 0.1
    pol, ref = _pairs_by_hand(_model(0)), _pairs_by_hand(_model(1))
    expected = sum(
        -(1 - eps) * _log_sig(beta * ((pc - pr) - (rc - rr))) - eps * _log_sig(-beta * ((pc - pr) - (rc - rr)))
        for (pc, pr, _, _), (rc, rr, _, _) in zip(pol, ref, strict=True)
    ) / len(PAIRS)
    assert _loss("dpo", _model(1), beta=beta, smoothing=eps) == pytest.approx(expected, rel=1e-4)


def test_ipo_uses_length_averaged_logps() -> None:
    beta = 0.5
    pol, ref = _pairs_by_hand(_model(0)), _pairs_by_hand(_model(1))
    expected = sum(
        ((pc / nc - pr / nr) - (rc / nc - rr / nr) - 1 / (2 * beta)) ** 2
        for (pc, pr, nc, nr), (rc, rr, _, _) in zip(pol, ref, strict=True)
    ) / len(PAIRS)
    assert _loss("ipo", _model(1), beta=beta) == pytest.approx(expected, rel=1e-4)


def test_orpo() -> None:
    lam = 0.25
    pol = _pairs_by_hand(_model(0))

    def log_odds(avg: float) -> float:
        return avg - math.log(1 - math.exp(avg))

    ratio = sum(_log_sig(log_odds(pc / nc) - log_odds(pr / nr)) for pc, pr, nc, nr in pol) / len(PAIRS)
    assert _loss("orpo", beta=lam) == pytest.approx(_nll(pol) - lam * ratio, rel=1e-4)


def test_cpo() -> None:
    beta, alpha = 0.2, 0.7
    pol = _pairs_by_hand(_model(0))
    expected = sum(-_log_sig(beta * (pc - pr)) for pc, pr, _, _ in pol) / len(PAIRS) + alpha * _nll(pol)
    assert _loss("cpo", beta=beta, cpo_alpha=alpha) == pytest.approx(expected, rel=1e-4)


def test_simpo() -> None:
    beta, gamma, alpha = 2.0, 0.8, 0.5
    pol = _pairs_by_hand(_model(0))
    expected = sum(-_log_sig(beta * (pc / nc - pr / nr) - gamma) for pc, pr, nc, nr in pol) / len(PAIRS)
    expected += alpha * _nll(pol)
    assert _loss("simpo", beta=beta, simpo_gamma=gamma, cpo_alpha=alpha) == pytest.approx(expected, rel=1e-4)


def test_kto_with_mismatched_kl_and_weights() -> None:
    beta, wd, wu = 0.4, 1.5, 0.6
    rows = [{"input_ids": p + c, "labels": [IGNORE] * len(p) + c, "kto_label": [int(good)],
             "completion_start": [len(p)]} for p, c, good in KTO]
    policy, ref = _model(0), _model(5)  # seed 5: the mismatched pairs' mean log-ratio is above 0

    def ratio(prompt: list[int], completion: list[int]) -> float:
        return _seq_logp(policy, prompt, completion)[0] - _seq_logp(ref, prompt, completion)[0]

    # KL pairs: prompt i with the completion of row i-1
    kl = sum(ratio(KTO[i][0], KTO[i - 1][1]) for i in range(len(KTO))) / len(KTO)
    assert kl > 0  # else the clamp would hide which pairs the estimate used
    expected = sum(
        wd * (1 - _sig(beta * (ratio(p, c) - kl))) if good else wu * (1 - _sig(beta * (kl - ratio(p, c))))
        for p, c, good in KTO
    ) / len(KTO)
    got = _loss("kto", ref, rows=rows, beta=beta, desirable_weight=wd, undesirable_weight=wu)
    assert got == pytest.approx(expected, rel=1e-4)
