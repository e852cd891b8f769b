"""The EMA filter itself, on a parameter whose gradients we set by hand."""

import torch

from lathe_grokfast.filter import GrokfastEMA


def test_filtered_gradient_is_g_plus_lamb_times_ema() -> None:
    alpha, lamb = 0.8, 2.0
    layer = torch.nn.Linear(3, 2, bias=False)
    filt = GrokfastEMA(alpha, lamb)
    grads = [torch.randn(2, 3, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    ema = None
    for g in grads:
        layer.weight.grad = g.clone()
        filt.apply(layer)
        ema = g.clone() if ema is None else alpha * ema + (1 - alpha) * g
        torch.testing.assert_close(layer.weight.grad, g + lamb * ema)


def test_frozen_parameters_are_left_alone() -> None:
    layer = torch.nn.Linear(2, 2)
    layer.bias.requires_grad_(False)
    layer.weight.grad = torch.ones(2, 2)
    GrokfastEMA(0.5, 1.0).apply(layer)
    assert layer.bias.grad is None
    torch.testing.assert_close(layer.weight.grad, torch.full((2, 2), 2.0))
