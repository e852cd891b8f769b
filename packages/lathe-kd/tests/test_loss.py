"""The chunked distillation loss equals a dense reference computation."""

import math

import pytest
import torch

from lathe_kd.loss import chunked_kd_loss

V, H, K = 11, 6, 4


def _case(seed: int = 0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    n = 7
    hidden = torch.randn(n, H, generator=g, dtype=torch.float64)
    head = torch.nn.Linear(H, V, bias=False).double()
    with torch.no_grad():
        head.weight.copy_(torch.randn(V, H, generator=g))
    labels = torch.randint(0, V, (n,), generator=g)
    labels[2] = -100  # an untrained position
    ids = torch.stack([torch.randperm(V, generator=g)[:K] for _ in range(n)])
    lp = torch.log_softmax(torch.randn(n, K, generator=g, dtype=torch.float64), -1) - 0.1  # top-k mass < 1
    lp[1, 3] = float("-inf")  # a position whose teacher gave only 3 tokens
    lp[4] = float("-inf")  # a trained position without a teacher row
    return hidden, head, labels, ids, lp


def _reference(hidden, head, labels, ids, lp, temperature, beta, kd_alpha, ce_alpha):  # type: ignore[no-untyped-def]
    logits = head(hidden).double()
    n_trained = int((labels != -100).sum())
    kd = torch.zeros((), dtype=torch.float64)
    ce = torch.zeros((), dtype=torch.float64)
    for i in range(len(labels)):
        if labels[i] != -100:
            ce = ce - torch.log_softmax(logits[i], -1)[labels[i]]
        ok = torch.isfinite(lp[i])
        if not ok.any():
            continue
        tok, tl = ids[i][ok], lp[i][ok]
        if beta == 0:
            s = torch.log_softmax(logits[i] / temperature, -1)[tok]
            kd = kd + (tl.exp() * (tl - s)).sum()
            continue
        ps = torch.softmax(logits[i] / temperature, -1)[tok]
        ps = ps / ps.sum()
        pt = tl.exp() / tl.exp().sum()
        if beta == 1:
            kd = kd + (ps * (ps / pt).log()).sum()
        else:
            m = beta * pt + (1 - beta) * ps
            kd = kd + beta * (pt * (pt / m).log()).sum() + (1 - beta) * (ps * (ps / m).log()).sum()
    return kd_alpha * temperature**2 * kd / n_trained + ce_alpha * ce / n_trained


@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5, 0.2])
@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_loss_and_gradient_equal_dense_reference(beta: float, chunk: int) -> None:
    hidden, head, labels, ids, lp = _case()
    kwargs = dict(temperature=2.0, beta=beta, kd_alpha=0.7, ce_alpha=0.3)
    h1 = hidden.clone().requires_grad_(True)
    out = chunked_kd_loss(h1, head, labels, ids, lp, chunk_size=chunk, **kwargs)
    out.loss.backward()
    h2 = hidden.clone().requires_grad_(True)
    ref = _reference(h2, head, labels, ids, lp, **kwargs)
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-4, atol=1e-7)


def test_regimes_differ_and_jsd_is_symmetric_at_one_half() -> None:
    hidden, head, labels, ids, lp = _case(1)
    vals = {b: chunked_kd_loss(hidden, head, labels, ids, lp, beta=b).kd.item() for b in (0.0, 0.5, 1.0)}
    assert len({round(v, 6) for v in vals.values()}) == 3
    assert vals[0.5] <= math.log(2) + 1e-6  # JSD is bounded by log 2 per position


def test_loss_terms_follow_their_weights() -> None:
    hidden, head, labels, ids, lp = _case()
    out = chunked_kd_loss(hidden, head, labels, ids, lp, temperature=3.0, kd_alpha=2.0, ce_alpha=0.5)
    assert out.loss.item() == pytest.approx(2.0 * 9.0 * out.kd.item() + 0.5 * out.ce.item(), rel=1e-6)
    half = chunked_kd_loss(hidden, head, labels, ids, lp, temperature=3.0, kd_alpha=2.0, ce_alpha=0.5, num_items=12)
    assert half.loss.item() == pytest.approx(out.loss.item() * 6 / 12, rel=1e-6)


def test_kd_is_zero_when_student_equals_teacher() -> None:
    hidden, head, labels, ids, _ = _case()
    full_ids = torch.arange(V).expand(len(labels), V)
    teacher = torch.log_softmax(head(hidden) / 1.5, -1).detach()
    for beta in (0.0, 0.5, 1.0):
        out = chunked_kd_loss(hidden, head, labels, full_ids, teacher, temperature=1.5, beta=beta)
        assert out.kd.item() == pytest.approx(0.0, abs=1e-6)
