"""The two halves of the mask, each on its own: gradients, and the weight after an optimizer step."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from lathe_llmcompressor.mask import ConstantSparsityCallback
from lathe_llmcompressor.recipe import PruningSpec


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(8, 8, bias=False)
        with torch.no_grad():
            self.q_proj.weight[:, ::2] = 0.0


def _started(model: torch.nn.Module) -> ConstantSparsityCallback:
    cb = ConstantSparsityCallback([PruningSpec(targets=("re:.*q_proj.weight",), start=0.0, end=None, stage="t")])
    cb.on_train_begin(None, SimpleNamespace(epoch=0.0), None, model=model)
    return cb


def test_gradients_of_zeros_are_masked() -> None:
    model = Tiny()
    _started(model)
    model.q_proj(torch.randn(3, 8)).pow(2).sum().backward()
    assert torch.all(model.q_proj.weight.grad[:, ::2] == 0)
    assert torch.all(model.q_proj.weight.grad[:, 1::2] != 0)


def test_weights_are_masked_after_a_step_that_moves_zeros() -> None:
    """AdamW momentum from before the mask (or weight decay of a restored state) moves zeros."""
    model = Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    model.q_proj(torch.randn(3, 8)).pow(2).sum().backward()
    opt.step()  # momentum everywhere, before the mask exists
    opt.zero_grad()
    with torch.no_grad():
        model.q_proj.weight[:, ::2] = 0.0
    cb = _started(model)
    model.q_proj(torch.randn(3, 8)).pow(2).sum().backward()
    opt.step()
    assert torch.any(model.q_proj.weight[:, ::2] != 0), "the step should have moved the zeros"
    cb.on_optimizer_step(None, SimpleNamespace(epoch=0.0), None)
    assert torch.all(model.q_proj.weight[:, ::2] == 0)


def test_end_stops_the_mask() -> None:
    model = Tiny()
    cb = ConstantSparsityCallback([PruningSpec(targets=("q_proj",), start=0.0, end=1.0, stage="t")])
    cb.on_train_begin(None, SimpleNamespace(epoch=0.0), None, model=model)
    assert cb.active
    cb.on_step_begin(None, SimpleNamespace(epoch=1.0), None)
    assert not cb.active
    model.q_proj(torch.randn(3, 8)).pow(2).sum().backward()
    assert torch.any(model.q_proj.weight.grad[:, ::2] != 0)
