"""DenseMixer on single MoE blocks of every supported architecture."""

import pytest
import torch
from moe_refs import ARCHS, expert_output, straight_through_reference, tiny_block

from lathe.errors import LatheError
from lathe.testing import tiny_model
from lathe_densemixer.moe_blocks import attach
from lathe_densemixer.router_grad import UnselectedRouterGrad


def _hidden(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(seed))


def _grads(block: torch.nn.Module, hidden: torch.Tensor, forward=None):  # type: ignore[no-untyped-def]
    """Output and the gradients of a fixed random projection of it, for x and every parameter."""
    block.zero_grad()
    x = hidden.clone().requires_grad_(True)
    out = (forward or block)(x)
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    (out * target).sum().backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in block.named_parameters()}


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_output_is_bitwise_unchanged(arch: str) -> None:
    block, hidden = tiny_block(arch), _hidden()
    plain = block(hidden)
    hooks = attach(torch.nn.Sequential(block))
    dense = block(hidden)
    hooks.remove()
    assert torch.equal(plain, dense)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_equal_the_straight_through_reference(arch: str) -> None:
    block, hidden = tiny_block(arch), _hidden()
    _, x_plain, plain = _grads(block, hidden)
    ref_out, x_ref, ref = _grads(block, hidden, lambda x: straight_through_reference(block, x))
    hooks = attach(torch.nn.Sequential(block))
    out, x_dense, dense = _grads(block, hidden)
    hooks.remove()

    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)  # the reference is the same mixture
    torch.testing.assert_close(dense["gate.weight"], ref["gate.weight"], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(x_dense, x_ref, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(dense["gate.weight"], plain["gate.weight"], rtol=1e-3, atol=1e-5)
    for name in plain:  # experts (and the shared expert) keep their ordinary sparse gradient
        if name != "gate.weight":
            torch.testing.assert_close(dense[name], plain[name], rtol=0, atol=0)


@pytest.mark.parametrize("normalize", [False, True])
def test_unselected_experts_get_routing_gradient_only_with_densemixer(normalize: bool) -> None:
    block = tiny_block("qwen2_moe", normalize=normalize)
    x = _hidden().reshape(-1, 32)
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    probs = torch.softmax(torch.randn(10, 6, generator=torch.Generator().manual_seed(4)), -1).requires_grad_(True)
    top, selected = torch.topk(probs, 2, dim=-1)
    weights = top / top.sum(-1, keepdim=True) if normalize else top
    unselected = torch.ones_like(probs, dtype=torch.bool).scatter_(1, selected, False)

    # the library's sparse mixture alone: no gradient reaches unselected experts' probabilities
    sparse = block.experts(x, selected, weights)
    (p_sparse,) = torch.autograd.grad((sparse * grad_out).sum(), probs, retain_graph=True)
    assert torch.all(p_sparse[unselected] == 0)

    extra = UnselectedRouterGrad.apply(probs, x, selected, block.experts, normalize)
    assert torch.equal(extra, torch.zeros_like(x))
    (p_dense,) = torch.autograd.grad(((sparse + extra) * grad_out).sum(), probs)
    assert torch.all(p_dense[unselected] != 0)
    torch.testing.assert_close(p_dense[~unselected], p_sparse[~unselected], rtol=0, atol=0)

    # by hand: g_e = <grad_out, E_e(x)>;  dL/dp_j = (g_j - sum_S w_i g_i) / Z  (Z = 1, no sum if plain)
    with torch.no_grad():
        g = torch.stack([(grad_out * expert_output(block, x, e)).sum(-1) for e in range(6)], -1)
        if normalize:
            z = top.sum(-1, keepdim=True)
            w = torch.zeros_like(probs).scatter_(1, selected, weights)
            expected = (g - (w * g).sum(-1, keepdim=True)) / z
        else:
            expected = g
    torch.testing.assert_close(p_dense[unselected], expected[unselected], rtol=1e-5, atol=1e-6)


def test_removing_the_hooks_restores_the_block() -> None:
    block, hidden = tiny_block("mixtral"), _hidden()
    _, _, before = _grads(block, hidden)
    forward = type(block).forward
    hooks = attach(torch.nn.Sequential(block))
    assert block._forward_hooks and block.gate._forward_hooks
    hooks.remove()
    assert not block._forward_hooks and not block.gate._forward_hooks
    assert type(block).forward is forward and "forward" not in vars(block)
    _, _, after = _grads(block, hidden)
    torch.testing.assert_close(after["gate.weight"], before["gate.weight"], rtol=0, atol=0)


def test_no_gradient_no_extra_work() -> None:
    block, hidden = tiny_block("qwen3_moe"), _hidden()
    hooks = attach(torch.nn.Sequential(block))
    with torch.no_grad():
        out = block(hidden)
    hooks.remove()
    assert out.grad_fn is None


def test_whole_tiny_qwen2_moe_model_forward_unchanged() -> None:
    model = tiny_model("qwen2_moe")
    ids = torch.randint(0, 512, (2, 12), generator=torch.Generator().manual_seed(0))
    plain = model(input_ids=ids).logits
    hooks = attach(model)
    dense = model(input_ids=ids).logits
    dense.sum().backward()
    hooks.remove()
    assert hooks.blocks == ["model.layers.0.mlp", "model.layers.1.mlp"]
    assert torch.equal(plain, dense)
    assert all(layer.mlp.gate.weight.grad is not None for layer in model.model.layers)


def test_model_without_moe_block_is_a_clear_error() -> None:
    with pytest.raises(LatheError, match=r"dense_mixer: true, but LlamaForCausalLM has no mixture-of-experts block"):
        attach(tiny_model("llama"))


def test_gradient_checkpointing_gives_the_same_router_gradient() -> None:
    ids = torch.randint(0, 512, (2, 12), generator=torch.Generator().manual_seed(0))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model("qwen2_moe")
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        hooks = attach(model)
        model(input_ids=ids, labels=ids).loss.backward()
        hooks.remove()
        grads.append([layer.mlp.gate.weight.grad for layer in model.model.layers])
    for plain, checkpointed in zip(*grads, strict=True):
        torch.testing.assert_close(checkpointed, plain, rtol=1e-5, atol=1e-7)
