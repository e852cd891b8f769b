"""The CCE loss (torch_compile implementation, which runs on CPU) equals the dense loss, and
each family's own loss, with its gradients; tolerance: loss rel 1e-5, gradients 1e-5 / 1e-6."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lathe.hidden_loss import OutputHead, dense_loss, output_head
from lathe_cut_cross_entropy.loss import CutCrossEntropyLoss, kernel_inputs

LOSS = CutCrossEntropyLoss("torch_compile")


def _inputs(vocab: int = 300, hidden: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 9, hidden, generator=g, requires_grad=True)
    w = torch.randn(vocab, hidden, generator=g, requires_grad=True)
    b = torch.randn(vocab, generator=g, requires_grad=True)
    labels = torch.randint(0, vocab, (2, 9), generator=g)
    labels[0, :3] = -100
    labels[1, 7] = -100
    return h, w, b, labels


@pytest.mark.parametrize("variant", ["plain", "bias_scale_softcap"])
def test_loss_and_gradients_equal_the_dense_loss(variant: str) -> None:
    h, w, b, labels = _inputs()
    head = OutputHead(w) if variant == "plain" else OutputHead(w, b, scale=0.5, softcap=3.0)
    params = [h, w] if variant == "plain" else [h, w, b]
    for num_items in (None, 7):
        ours = LOSS(h, head, labels, num_items, {})
        ref = dense_loss(h, head, labels, num_items)
        assert float(ours) == pytest.approx(float(ref), rel=1e-5)
        for got, want in zip(torch.autograd.grad(ours, params), torch.autograd.grad(ref, params), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_bias_and_scale_are_folded_exactly() -> None:
    h, w, b, _ = _inputs()
    head = OutputHead(w, b, scale=0.25)
    e, c = kernel_inputs(h, head)
    torch.testing.assert_close(e @ c.T, head(h))


SMALL = dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
             num_attention_heads=4, num_key_value_heads=2, head_dim=8)


def _family(name: str, **extra: Any) -> torch.nn.Module:
    import transformers

    config_cls = getattr(transformers, f"{name}Config")
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config_cls(**{**SMALL, **extra}), dtype=torch.float32)


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("Llama", {}),
        ("Qwen2", {"tie_word_embeddings": True}),  # tied embeddings: the gradient reaches the shared weight
        ("Gemma2", {"final_logit_softcapping": 3.0}),  # soft-capping
        ("Cohere", {"logit_scale": 0.5}),  # logit scale
        ("Granite", {"logits_scaling": 4.0}),  # logits divided
        ("Phi", {}),  # output layer with a bias
    ],
)
def test_each_family_matches_its_own_loss_and_gradients(name: str, extra: dict[str, Any]) -> None:
    model = _family(name, **extra)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 300, (2, 10), generator=g)
    labels = ids.clone()
    labels[:, :4] = -100
    own = model(input_ids=ids, labels=labels).loss
    own_grads = torch.autograd.grad(own, list(model.parameters()), allow_unused=True)
    out = model(input_ids=ids, output_hidden_states=True, logits_to_keep=1)
    ours = LOSS(out.hidden_states[-1], output_head(model), labels, None, {})
    our_grads = torch.autograd.grad(ours, list(model.parameters()), allow_unused=True)
    assert float(ours) == pytest.approx(float(own), rel=1e-5)
    for (pname, _), got, want in zip(model.named_parameters(), our_grads, own_grads, strict=True):
        if want is None:
            assert got is None or not got.any(), pname
        else:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6, msg=pname)
