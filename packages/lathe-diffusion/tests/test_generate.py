"""Generation by iterative unmasking."""

import pytest
import torch

from lathe.testing import tiny_model
from lathe_diffusion.generate import transfer_counts, unmask

MASK = 500


def test_transfer_counts_spread_every_masked_token_over_the_steps() -> None:
    plan = transfer_counts(torch.tensor([10, 3, 0]), 4)
    assert plan.tolist() == [[3, 3, 2, 2], [1, 1, 1, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize(("steps", "temperature"), [(1, 0.0), (3, 0.0), (5, 1.0), (40, 0.7)])
def test_every_token_is_unmasked_within_generation_steps(steps: int, temperature: float) -> None:
    model = tiny_model("llama").eval()
    ids = torch.tensor([[10, 11, MASK, MASK, MASK, 12, MASK, MASK], [MASK] * 8])
    g = torch.Generator().manual_seed(0)
    out = unmask(model, ids, MASK, steps=steps, temperature=temperature, generator=g)
    assert not (out.ids == MASK).any()
    assert out.forward_passes <= steps
    kept = ids != MASK
    assert torch.equal(out.ids[kept], ids[kept])  # known tokens untouched


def test_temperature_zero_is_deterministic_and_sampling_varies() -> None:
    model = tiny_model("llama").eval()
    ids = torch.tensor([[MASK] * 12])
    a = unmask(model, ids, MASK, steps=4).ids
    b = unmask(model, ids, MASK, steps=4).ids
    assert torch.equal(a, b)
    hot = {tuple(unmask(model, ids, MASK, 4, 5.0, torch.Generator().manual_seed(s)).ids[0].tolist()) for s in range(4)}
    assert len(hot) > 1


class _Confident(torch.nn.Module):
    """A stand-in model: at position i it predicts token 100 + i with a confidence that
    grows with ``sharpness[i]``, and records the ids it was called with."""

    def __init__(self, sharpness: list[float], vocab: int = 512):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.sharpness, self.vocab, self.seen = sharpness, vocab, []

    def forward(self, input_ids: torch.Tensor, **_: object) -> object:
        self.seen.append(input_ids.clone())
        logits = torch.zeros(*input_ids.shape, self.vocab)
        for i, sharp in enumerate(self.sharpness):
            logits[:, i, 100 + i] = sharp
        return type("Out", (), {"logits": logits})()


def test_low_confidence_tokens_wait() -> None:
    """One step per token: each step keeps exactly one prediction, the most confident one."""
    model = _Confident([0.0, 1.0, 5.0, 3.0])  # position 2 most confident, then 3, then 1
    ids = torch.tensor([[10, MASK, MASK, MASK]])
    out = unmask(model, ids, MASK, steps=3)
    assert out.forward_passes == 3
    assert out.ids.tolist() == [[10, 101, 102, 103]]
    filled = [(seen[0] != MASK).nonzero().flatten().tolist() for seen in model.seen]
    assert filled == [[0], [0, 2], [0, 2, 3]]  # most confident first, the least confident last
