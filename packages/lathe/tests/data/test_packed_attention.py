"""A packed batch (position_ids, no attention_mask) attends exactly like the same sequences unpacked.

This checks attention only (each sequence's own next-token loss and the gradients, for
every attention backend); the trainer's loss on packed rows, boundary labels included,
is checked in ``tests/train/test_packed_loss.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lathe.data.collate import Collator
from lathe.data.packing import pack_dataset, pack_sequences
from lathe.testing import alpaca_rows, tiny_model


def _rows(tok: Any) -> list[dict[str, list[int]]]:
    rows = []
    for r in alpaca_rows(6, seed=3):
        ids = tok(r["instruction"] + " " + r["input"] + " " + r["output"])["input_ids"] + [tok.eos_token_id]
        labels = [-100] * 4 + ids[4:]
        rows.append({"input_ids": ids, "labels": labels})
    return rows


def _per_sequence_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token loss of one sequence."""
    return torch.nn.functional.cross_entropy(logits[:-1], labels[1:], ignore_index=-100, reduction="sum")


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    ("attn", "with_grads"),
    # FlexAttention has no backward on CPU (torch raises NotImplementedError): forward losses only
    [("eager", True), ("sdpa", True), ("flex_attention", False)],
)
def test_packed_loss_and_grads_equal_unpacked(tok: Any, attn: str, with_grads: bool) -> None:
    import datasets

    torch.set_grad_enabled(with_grads)
    try:
        _compare(tok, attn, with_grads, datasets)
    finally:
        torch.set_grad_enabled(True)


def _compare(tok: Any, attn: str, with_grads: bool, datasets: Any) -> None:
    rows = _rows(tok)
    lengths = [len(r["input_ids"]) for r in rows]
    bins = pack_sequences(lengths, capacity=64)
    assert any(len(b) > 1 for b in bins), "the fixture must pack several sequences into one row"
    packed_rows = pack_dataset(datasets.Dataset.from_list(rows), bins)
    model = tiny_model("llama", tok, seed=1, attn_implementation=attn)

    # unpacked: one sequence at a time, padded batch with attention_mask
    unpacked_losses = {}
    model.zero_grad()
    batch = Collator(pad_id=tok.pad_token_id)(rows)
    assert "attention_mask" in batch and "position_ids" not in batch
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    total = torch.zeros(())
    for i, n in enumerate(lengths):
        loss = _per_sequence_loss(logits[i, :n], batch["labels"][i, :n])
        unpacked_losses[i] = loss.detach()
        total = total + loss
    if with_grads:
        total.backward()
    unpacked_grads = _grads(model)

    model.zero_grad()
    batch = Collator(pad_id=tok.pad_token_id)([packed_rows[i] for i in range(len(packed_rows))])
    assert "attention_mask" not in batch
    assert batch["use_cache"] is False  # else transformers builds a KV cache and ignores the boundaries
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    total = torch.zeros(())
    packed_losses = {}
    for b, members in enumerate(bins):
        offset = 0
        for item in members:
            n = lengths[item]
            loss = _per_sequence_loss(logits[b, offset : offset + n], batch["labels"][b, offset : offset + n])
            packed_losses[item] = loss.detach()
            total = total + loss
            offset += n
    if with_grads:
        total.backward()
    packed_grads = _grads(model)
    assert bool(packed_grads) == with_grads

    for i in unpacked_losses:
        torch.testing.assert_close(packed_losses[i], unpacked_losses[i], rtol=1e-4, atol=1e-4)
    for name, grad in unpacked_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-3, atol=1e-5)


def test_packed_without_boundaries_would_differ(tok: Any) -> None:
    """Control: the same packed rows with positions NOT restarting attend across sequences."""
    import datasets

    rows = _rows(tok)
    lengths = [len(r["input_ids"]) for r in rows]
    bins = pack_sequences(lengths, capacity=64)
    packed = pack_dataset(datasets.Dataset.from_list(rows), bins)
    model = tiny_model("llama", tok, seed=1, attn_implementation="sdpa")
    batch = Collator(pad_id=tok.pad_token_id)([packed[i] for i in range(len(packed))])
    with torch.no_grad():
        good = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        flat = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"])
        crossing = model(input_ids=batch["input_ids"], position_ids=flat, use_cache=False).logits
    assert not torch.allclose(good, crossing, atol=1e-4)
