"""ALST: TiledMLP gives the untiled gradients (shard counts, odd lengths, packed rows), chunked
cross-entropy gives the dense loss and gradients, and it conflicts with a plugin's fused loss."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from lathe.chunked_loss import chunked_cross_entropy
from lathe.config import validate
from lathe.config.load import ConfigError
from lathe.errors import LatheError
from lathe.hidden_loss import HiddenStatesLoss, dense_loss, output_head
from lathe.models.tiled_mlp import TiledMLPFunction, apply_tiled_mlp
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training
from lathe.testing.models import tiny_model
from tests.train.conftest import plugin


def _tiled(shards: int | None, original: bool = True) -> SimpleNamespace:
    return SimpleNamespace(tiled_mlp=True, tiled_mlp_num_shards=shards, tiled_mlp_use_original_mlp=original)


def _loss_and_grads(model: Any, **inputs: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = model(**inputs).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("shards", "length", "original"), [(2, 9, True), (3, 13, True), (4, 13, False), (7, 5, True)])
def test_tiled_mlp_gradients_equal_the_untiled_model(shards: int, length: int, original: bool) -> None:
    reference = tiny_model()
    tiled = copy.deepcopy(reference)
    assert apply_tiled_mlp(_tiled(shards, original), tiled) == 2
    torch.manual_seed(0)
    ids = torch.randint(0, 500, (2, length))
    loss_ref, grads_ref = _loss_and_grads(reference, input_ids=ids, labels=ids)
    loss, grads = _loss_and_grads(tiled, input_ids=ids, labels=ids)
    torch.testing.assert_close(loss, loss_ref)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-4, atol=1e-6, msg=name)


def test_tiled_mlp_on_packed_rows_and_under_lora() -> None:
    from peft import LoraConfig, get_peft_model

    reference = get_peft_model(tiny_model(), LoraConfig(r=4, target_modules=["gate_proj", "down_proj"], init_lora_weights=False))
    tiled = copy.deepcopy(reference)
    apply_tiled_mlp(_tiled(3), tiled)
    ids = torch.randint(0, 500, (1, 11), generator=torch.Generator().manual_seed(1))
    positions = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3]])  # three packed sequences
    inputs = dict(input_ids=ids, labels=ids, position_ids=positions)
    loss_ref, grads_ref = _loss_and_grads(reference, **inputs)
    loss, grads = _loss_and_grads(tiled, **inputs)
    torch.testing.assert_close(loss, loss_ref)
    assert grads.keys() == grads_ref.keys() and all("lora" in n for n in grads)
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-4, atol=1e-6, msg=name)


def test_the_tiled_function_keeps_only_its_input_for_backward() -> None:
    mlp = tiny_model().model.layers[0].mlp
    x = torch.randn(1, 64, 64, requires_grad=True)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        TiledMLPFunction.apply(mlp.forward, 4, x, *mlp.parameters())
    assert [t for t in saved if not isinstance(t, torch.nn.Parameter)] == [x]


def test_a_model_without_decoder_mlps_is_an_error() -> None:
    with pytest.raises(LatheError, match="tiled_mlp: Linear has no decoder layers"):
        apply_tiled_mlp(_tiled(2), torch.nn.Linear(2, 2))
    model = tiny_model("qwen2_moe")
    with pytest.raises(LatheError, match="tiled_mlp_use_original_mlp: false needs a gated MLP"):
        apply_tiled_mlp(_tiled(2, original=False), model)


@pytest.mark.parametrize(("chunks", "tied"), [(1, False), (3, False), (8, True)])
def test_chunked_cross_entropy_equals_the_dense_loss(chunks: int, tied: bool) -> None:
    model = tiny_model(tie_word_embeddings=tied)
    ids = torch.randint(0, 500, (2, 13), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[0, :4] = -100
    hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
    head = output_head(model)
    dense = dense_loss(hidden, head, labels, num_items=20)
    dense_grads = torch.autograd.grad(dense, [hidden, head.weight], retain_graph=True)
    ours = chunked_cross_entropy(hidden, head, labels, 20, chunks)
    grads = torch.autograd.grad(ours, [hidden, head.weight])
    torch.testing.assert_close(ours, dense)
    for g, ref in zip(grads, dense_grads, strict=True):
        torch.testing.assert_close(g, ref, rtol=1e-4, atol=1e-7)


def test_chunked_cross_entropy_keeps_no_logits_for_backward() -> None:
    vocab, tokens = 512, 64  # tiny_model's vocabulary
    hidden = torch.randn(1, tokens, 16, requires_grad=True)
    head = output_head(tiny_model(hidden_size=16))
    labels = torch.randint(0, vocab, (1, tokens))

    def logit_rows_saved(loss: Any) -> int:
        rows = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal rows
            if t.dim() and t.shape[-1] == vocab and not isinstance(t, torch.nn.Parameter):
                rows += t.numel() // vocab
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss()
        return rows

    assert logit_rows_saved(lambda: dense_loss(hidden, head, labels)) >= tokens  # the reference keeps them all
    assert logit_rows_saved(lambda: chunked_cross_entropy(hidden, head, labels, None, 8)) == 0


def test_chunked_cross_entropy_trains_and_conflicts_with_a_plugin_loss(tmp_path: Path) -> None:
    result = run_training(base_config(tmp_path, chunked_cross_entropy=True, chunked_cross_entropy_num_chunks=3, max_steps=2))
    assert type(result.trainer.lathe_hidden_loss).__name__ == "ChunkedCrossEntropy"
    assert result.trainer.lathe_hidden_loss.chunks == 3

    class Fused(HiddenStatesLoss):
        config_key = "liger_fused_linear_cross_entropy"

    plugins = Plugins.from_modules({"fake": plugin(lathe_hidden_states_loss=lambda cfg: Fused())})
    with pytest.raises(ConfigError, match="chunked_cross_entropy and liger_fused_linear_cross_entropy both compute the loss"):
        validate(base_config(tmp_path, chunked_cross_entropy=True), plugins)
    with pytest.raises(ConfigError, match="chunked_cross_entropy_num_chunks needs chunked_cross_entropy: true"):
        validate(base_config(tmp_path, chunked_cross_entropy_num_chunks=4), Plugins())


def test_tiled_mlp_recomputes_under_the_forwards_autocast() -> None:
    mlp = tiny_model().model.layers[0].mlp
    seen: list[bool] = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.is_autocast_enabled("cpu"))
        return mlp(x)

    x = torch.randn(1, 6, 64, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = TiledMLPFunction.apply(fn, 2, x, *mlp.parameters())
    out.float().sum().backward()  # the Trainer's backward runs outside autocast
    assert seen == [True] * 4 and out.dtype == torch.bfloat16  # 2 shards forward, 2 recomputed
