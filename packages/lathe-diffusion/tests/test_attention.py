"""Bidirectional attention that keeps packed samples apart."""

import torch

from lathe.testing import tiny_model
from lathe_diffusion.attention import bidirectional_logits, block_attention_mask


def test_mask_blocks_other_samples_and_padding() -> None:
    seg = torch.tensor([[1, 1, 2, 0]])
    m = block_attention_mask(seg, torch.float32)[0, 0]
    allowed = (m == 0).int().tolist()
    assert allowed == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


def _model(impl: str):  # type: ignore[no-untyped-def]
    model = tiny_model("llama", attn_implementation=impl)
    return model.eval()


def test_attention_is_bidirectional() -> None:
    model = _model("sdpa")
    a = torch.tensor([[10, 11, 12, 13]])
    b = torch.tensor([[10, 11, 12, 99]])  # only the last token differs
    seg = torch.ones_like(a)
    with torch.no_grad():
        la, lb = bidirectional_logits(model, a, seg), bidirectional_logits(model, b, seg)
    assert not torch.allclose(la[0, 0], lb[0, 0])  # the first token sees the last


def test_packed_neighbour_does_not_change_a_samples_logits() -> None:
    for impl in ("sdpa", "eager"):
        model = _model(impl)
        sample_a = [10, 11, 12, 13, 14]
        sample_b = [40, 41, 42]
        alone = torch.tensor([sample_a])
        packed = torch.tensor([sample_a + sample_b])
        pos = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2]])
        seg = torch.tensor([[1, 1, 1, 1, 1, 2, 2, 2]])
        with torch.no_grad():
            la = bidirectional_logits(model, alone, torch.ones_like(alone))
            lp = bidirectional_logits(model, packed, seg, pos)
            lb = bidirectional_logits(model, torch.tensor([sample_b]), torch.ones(1, 3, dtype=torch.long))
        torch.testing.assert_close(lp[0, :5], la[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(lp[0, 5:], lb[0], rtol=1e-5, atol=1e-5)


def test_padding_gives_finite_logits_and_does_not_leak() -> None:
    model = _model("sdpa")
    ids = torch.tensor([[10, 11, 12, 0, 0]])
    seg = torch.tensor([[1, 1, 1, 0, 0]])
    with torch.no_grad():
        lp = bidirectional_logits(model, ids, seg)
        la = bidirectional_logits(model, ids[:, :3], torch.ones(1, 3, dtype=torch.long))
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp[0, :3], la[0], rtol=1e-5, atol=1e-5)
