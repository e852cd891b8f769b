"""The loss equals a hand computation on a fixed mask."""

import math

import pytest
import torch

from lathe_diffusion.loss import diffusion_loss


def _case():  # type: ignore[no-untyped-def]
    # one row, 4 positions, vocabulary of 3; positions 1 and 3 masked, all 4 eligible
    logits = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    targets = torch.tensor([[0, 1, 1, 2]])
    masked = torch.tensor([[False, True, False, True]])
    p = torch.full((1, 4), 0.5)
    eligible = torch.ones(1, 4, dtype=torch.bool)
    return logits, targets, masked, p, eligible


def test_loss_equals_hand_computation() -> None:
    out = diffusion_loss(*_case(), importance_weighting=True)
    ce1 = -math.log(math.exp(0) / (math.exp(2) + 2))  # target 1 at position 1
    ce3 = -math.log(math.e / (math.e + 2))  # target 2 at position 3
    assert out.loss.item() == pytest.approx((ce1 / 0.5 + ce3 / 0.5) / 4, rel=1e-6)
    assert out.metrics["ce_loss"] == pytest.approx((ce1 + ce3) / 2, rel=1e-6)
    assert out.metrics["accuracy"] == pytest.approx(0.5)  # position 3 right, position 1 wrong
    assert out.metrics["mask_ratio"] == pytest.approx(0.5)
    assert out.metrics["num_masked_tokens"] == 2
    assert out.metrics["avg_p_mask"] == pytest.approx(0.5)
    assert out.metrics["importance_weight_avg"] == pytest.approx(2.0)


def test_without_importance_weighting_the_weight_is_one() -> None:
    out = diffusion_loss(*_case(), importance_weighting=False)
    ce1 = math.log(math.exp(2) + 2)
    ce3 = -math.log(math.e / (math.e + 2))
    assert out.loss.item() == pytest.approx((ce1 + ce3) / 4, rel=1e-6)
    assert out.metrics["importance_weight_avg"] == pytest.approx(1.0)


def test_normaliser_counts_eligible_tokens_not_positions() -> None:
    logits, targets, masked, p, eligible = _case()
    eligible[0, 0] = False  # e.g. a prompt token
    out = diffusion_loss(logits, targets, masked, p, eligible)
    ref = diffusion_loss(*_case())
    assert out.loss.item() == pytest.approx(ref.loss.item() * 4 / 3, rel=1e-6)
    assert diffusion_loss(logits, targets, masked, p, eligible, num_eligible=8).loss.item() == pytest.approx(ref.loss.item() / 2, rel=1e-6)


def test_gradient_reaches_only_masked_positions() -> None:
    logits, targets, masked, p, eligible = _case()
    logits.requires_grad_(True)
    diffusion_loss(logits, targets, masked, p, eligible).loss.backward()
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() == 0
    assert logits.grad[0, 1].abs().sum() > 0
