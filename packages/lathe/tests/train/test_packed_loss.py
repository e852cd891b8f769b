"""Packed rows train exactly like the same rows unpacked, measured through the trainer itself.

The loss is the trainer's own (``compute_loss`` on batches from the run's real collator),
for every strategy whose first label is trained: the last token of one packed sample must
never be trained to predict the first token of the next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lathe.data.collate import pad_id_of
from lathe.data.prepare import prepare_datasets
from lathe.models.loading import load_model
from lathe.models.tokenizer import load_tokenizer
from lathe.plugins import Plugins
from lathe.testing import alpaca_rows, text_rows, write_jsonl
from lathe.train.run import build_trainer
from lathe.train.trainer import count_tokens
from tests.train.conftest import make_cfg


def _datasets(tmp_path: Path, strategy: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Dataset entries (and extra config) whose samples have their first label trained."""
    data = tmp_path / "data"
    if strategy == "completion":
        return [{"path": str(write_jsonl(text_rows(6, seed=4), data / "c.jsonl")), "type": "completion"}], {}
    if strategy == "pretrain":  # each entry ends in a short chunk; the chunks pack into one row
        return [
            {"path": str(write_jsonl(text_rows(2, seed=s), data / f"p{s}.jsonl")), "type": "pretrain"}
            for s in range(4)
        ], {}
    if strategy == "input_output":
        rows = [{"segments": [{"text": r["text"], "label": True}, {"text": " end.", "label": i % 2 == 0}]}
                for i, r in enumerate(text_rows(6, seed=5))]
        return [{"path": str(write_jsonl(rows, data / "io.jsonl")), "type": "input_output"}], {}
    assert strategy == "train_on_inputs"
    return [{"path": str(write_jsonl(alpaca_rows(6, seed=6), data / "a.jsonl")), "type": "alpaca"}], {
        "train_on_inputs": True
    }


def _packed_rows(tmp_path: Path, cfg: Any, tok: Any, plugins: Plugins) -> list[dict[str, list[int]]]:
    packed_cfg = cfg.model_copy(update={"sample_packing": True})
    data = prepare_datasets(packed_cfg, tok, plugins)
    rows = [data.train[i] for i in range(len(data.train))]
    assert any(sum(1 for p in row["position_ids"] if p == 0) > 1 for row in rows), "nothing was packed"
    return rows


def _sequences(row: dict[str, list[int]]) -> list[dict[str, list[int]]]:
    """A packed row split back into its sequences (at every position_ids == 0)."""
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0] + [len(row["position_ids"])]
    return [{"input_ids": row["input_ids"][a:b], "labels": row["labels"][a:b]} for a, b in zip(starts[:-1], starts[1:], strict=True)]


def _trainer_loss(tmp_path: Path, model_dir: Path, strategy: str, packed: bool) -> tuple[float, int, dict[str, torch.Tensor]]:
    """(summed loss, trained tokens, gradients of the summed loss) over the whole training set,
    as packed rows or as the same sequences one per row."""
    datasets, extra = _datasets(tmp_path, strategy)
    cfg = make_cfg(tmp_path, base_model=str(model_dir), datasets=datasets, sample_packing=packed,
                   micro_batch_size=2, sequence_len=256, attn_implementation="sdpa", dataset_processes=1,
                   output_dir=str(tmp_path / f"out-{packed}"), **extra)
    plugins = Plugins()
    tok = load_tokenizer(cfg, plugins)
    rows = _packed_rows(tmp_path, cfg, tok, plugins)
    if not packed:  # the same sequences, one per row (some strategies tokenize differently when packing)
        rows = [seq for row in rows for seq in _sequences(row)]
    model = load_model(cfg, tok, plugins)
    trainer = build_trainer(cfg, plugins, model, tok, rows, None)
    collate = trainer.data_collator
    total, trained, real = torch.zeros(()), 0, 0
    for start in range(0, len(rows), 2):
        batch = collate(rows[start : start + 2])
        counts = count_tokens(batch, pad_id_of(tok))
        real += counts[0]
        trained += counts[1]
        # num_items_in_batch=1: the trainer's loss is then the sum over trained tokens
        total = total + trainer.compute_loss(model, batch, num_items_in_batch=torch.tensor(1))
    # tokens_per_second counts real tokens only, never the padding of a packed or unpacked batch
    assert real == sum(len(row["input_ids"]) for row in rows)
    total.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return float(total.detach()), trained, grads


@pytest.mark.parametrize("strategy", ["completion", "pretrain", "input_output", "train_on_inputs"])
def test_trainer_loss_packed_equals_unpacked(tmp_path: Path, tiny_model_dir: Path, strategy: str) -> None:
    loss, count, grads = _trainer_loss(tmp_path, tiny_model_dir, strategy, packed=False)
    packed_loss, packed_count, packed_grads = _trainer_loss(tmp_path, tiny_model_dir, strategy, packed=True)
    print(f"{strategy}: unpacked {count} tokens, summed loss {loss:.2f}; packed {packed_count}, {packed_loss:.2f}")
    assert packed_count == count
    assert packed_loss == pytest.approx(loss, rel=1e-4)
    assert packed_loss / packed_count == pytest.approx(loss / count, rel=1e-4)
    assert grads and grads.keys() == packed_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-3, atol=1e-5, msg=name)


def test_boundary_masking_wraps_every_collator_unless_labels_are_not_shifted(cfg_of) -> None:  # type: ignore[no-untyped-def]
    from transformers import Trainer

    from lathe.data.collate import BoundaryMasking
    from lathe.testing import tiny_tokenizer
    from tests.train.conftest import make_plugins

    def own(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"input_ids": torch.tensor([[5, 6, 7, 8]]), "labels": torch.tensor([[5, 6, 7, 8]]),
                "position_ids": torch.tensor([[0, 1, 0, 1]])}

    class Unshifted(Trainer):
        lathe_next_token_labels = False

    cfg, tok = cfg_of(), tiny_tokenizer()
    for trainer_cls, masked in ((None, [-100, 6, -100, 8]), (Unshifted, [5, 6, 7, 8])):
        plugins = make_plugins(lathe_collator=lambda cfg, tokenizer: own, lathe_trainer_cls=lambda cfg, c=trainer_cls: c)
        trainer = build_trainer(cfg, plugins, load_model(cfg, tok, plugins), tok, [], None)
        assert isinstance(trainer.data_collator, BoundaryMasking) == (trainer_cls is None)
        assert trainer.data_collator([{}])["labels"].tolist() == [masked]
