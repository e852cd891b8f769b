"""Liger's losses: the wiring up to the Triton kernel call (a pure-torch stand-in with the
kernel's signature takes its place), liger's pure-torch chunked loss against the dense loss,
and the validation rules between the loss keys and with cut_cross_entropy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from lathe.config import ConfigError, validate
from lathe.hidden_loss import OutputHead, dense_loss
from lathe.plugins import Plugins
from lathe.testing import base_config
from lathe_liger.losses import LigerCE, LigerFusedLinearCE


class TorchFLCE:
    """``LigerFusedLinearCrossEntropyLoss`` computed densely: same constructor and call."""

    def __init__(self, ignore_index: int, reduction: str, softcap: float | None, use_token_scaling: bool) -> None:
        self.softcap, self.scaling, self.ignore = softcap, use_token_scaling, ignore_index
        assert reduction == "sum"

    def __call__(self, weight: torch.Tensor, x: torch.Tensor, target: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        logits = F.linear(x, weight, bias)
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        losses = F.cross_entropy(logits.float(), target, ignore_index=self.ignore, reduction="none")
        if self.scaling:  # each token's loss times its predicted probability, detached
            p = torch.softmax(logits.float(), -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            losses = losses * p.detach()
        return losses.sum()


def _inputs() -> tuple[torch.Tensor, OutputHead, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 7, 16, generator=g, requires_grad=True)
    w = torch.randn(50, 16, generator=g, requires_grad=True)
    b = torch.randn(50, generator=g, requires_grad=True)
    labels = torch.randint(0, 50, (2, 7), generator=g)
    labels[0, :2] = -100
    return h, OutputHead(w, b, scale=0.5, softcap=4.0), labels


def test_fused_loss_wiring_equals_the_dense_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    import liger_kernel.transformers.fused_linear_cross_entropy as flce

    monkeypatch.setattr(flce, "LigerFusedLinearCrossEntropyLoss", TorchFLCE)
    h, head, labels = _inputs()
    for num_items in (None, 5):
        ours = LigerFusedLinearCE(use_token_scaling=False)(h, head, labels, num_items, {})
        ref = dense_loss(h, head, labels, num_items)
        assert float(ours) == pytest.approx(float(ref), rel=1e-5)
        params = [h, head.weight, head.bias]
        for a, b in zip(torch.autograd.grad(ours, params), torch.autograd.grad(ref, params), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    scaled = LigerFusedLinearCE(use_token_scaling=True)(h, head, labels, None, {})
    assert float(scaled) < float(ref)  # probabilities < 1 shrink every token's loss


def test_cross_entropy_wiring_equals_the_dense_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    import liger_kernel.transformers.cross_entropy as ce

    monkeypatch.setattr(ce, "LigerCrossEntropyLoss", torch.nn.CrossEntropyLoss)
    h, head, labels = _inputs()
    assert float(LigerCE()(h, head, labels, 3, {})) == pytest.approx(float(dense_loss(h, head, labels, 3)), rel=1e-5)


def test_liger_chunked_loss_matches_the_dense_loss() -> None:
    """liger's pure-torch chunked loss (its distillation base; hard loss only = cross-entropy)."""
    from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss

    g = torch.Generator().manual_seed(0)
    h = torch.randn(40, 16, generator=g, requires_grad=True)
    w = torch.randn(300, 16, generator=g, requires_grad=True)
    y = torch.randint(0, 300, (40,), generator=g)
    y[:5] = -100
    chunked = LigerFusedLinearJSDLoss(weight_hard_loss=1.0, weight_soft_loss=0.0, compiled=False, chunk_size=8)
    ours = chunked(h, w, h.detach(), w.detach(), y)
    ref = F.cross_entropy(h @ w.T, y)
    assert float(ours) == pytest.approx(float(ref), rel=1e-5)
    for a, b in zip(torch.autograd.grad(ours, [h, w]), torch.autograd.grad(ref, [h, w]), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _validate(tmp_path: Path, names: list[str], **keys: Any) -> Any:
    return validate({**base_config(tmp_path), "plugins": names, **keys}, Plugins.load(names))


def test_the_two_liger_losses_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="liger_cross_entropy and liger_fused_linear_cross_entropy are both set"):
        _validate(tmp_path, ["liger"], liger_cross_entropy=True, liger_fused_linear_cross_entropy=True)


@pytest.mark.parametrize("key", ["liger_cross_entropy", "liger_fused_linear_cross_entropy"])
def test_a_liger_loss_and_cut_cross_entropy_conflict_naming_both(tmp_path: Path, key: str) -> None:
    pytest.importorskip("lathe_cut_cross_entropy")
    with pytest.raises(ConfigError, match=rf"'cut_cross_entropy' \(cut_cross_entropy\) and 'liger' \({key}\)"):
        _validate(tmp_path, ["cut_cross_entropy", "liger"], **{key: True})


def test_key_rules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="liger_use_token_scaling: true needs liger_fused_linear_cross_entropy"):
        _validate(tmp_path, ["liger"], liger_use_token_scaling=True)
    with pytest.raises(ConfigError, match="liger_rms_norm_gated: liger-kernel 0.8 has no gated RMSNorm kernel"):
        _validate(tmp_path, ["liger"], liger_rms_norm_gated=True)
    with pytest.raises(ConfigError, match="liger_swiglu and liger_glu_activation are both set"):
        _validate(tmp_path, ["liger"], liger_swiglu=True, liger_glu_activation=True)
    assert _validate(tmp_path, ["liger"], liger_swiglu=True).liger_glu_activation is True
    with pytest.raises(ConfigError, match="liger_kernel_impl"):
        _validate(tmp_path, ["liger"], liger_kernel_impl="cute")
