"""Turning prepared rows into batches.

Unpacked rows are right-padded: ``input_ids`` with the pad id, ``labels`` with -100, and an
``attention_mask``. Packed rows carry ``position_ids`` that restart at 0 for each sequence and
get NO ``attention_mask`` and ``use_cache=False``: transformers (masking_utils ``find_packed_sequence_indices``) then
builds a block-diagonal causal mask from the position ids for eager, sdpa and flex attention,
and flash-attention varlen reads the same boundaries. Labels are the only loss input, so the
trainer can normalise by the number of trained tokens across accumulation steps.

A causal LM's loss shifts labels by one over the whole row, so in a packed row the label
at a sequence start would be predicted from the last token of the sequence before it.
:class:`BoundaryMasking` (applied by ``build_trainer`` to whichever collator the run uses,
lathe's or a plugin's) masks the label at every ``position_ids == 0``: a packed row then
trains exactly the tokens, and gives exactly the loss, of its sequences unpacked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lathe.data.strategies import IGNORE

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from lathe.config import Config


@dataclass
class Collator:
    pad_id: int
    multiple_of: int = 8
    fixed_length: int | None = None

    def _length(self, rows: Sequence[dict[str, Any]]) -> int:
        if self.fixed_length:
            return self.fixed_length
        longest = max(len(r["input_ids"]) for r in rows)
        return -(-longest // self.multiple_of) * self.multiple_of

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        length = self._length(rows)
        packed = "position_ids" in rows[0]
        n = len(rows)
        input_ids = torch.full((n, length), self.pad_id, dtype=torch.long)
        labels = torch.full((n, length), IGNORE, dtype=torch.long)
        extra = torch.zeros((n, length), dtype=torch.long)
        for i, row in enumerate(rows):
            k = len(row["input_ids"])
            input_ids[i, :k] = torch.as_tensor(row["input_ids"])
            labels[i, :k] = torch.as_tensor(row["labels"])
            if packed:
                extra[i, :k] = torch.as_tensor(row["position_ids"])
                # padding forms its own trailing "sequence" (positions restart), never attended by real tokens
                extra[i, k:] = torch.arange(length - k)
            else:
                extra[i, :k] = 1
        batch: dict[str, Any] = {"input_ids": input_ids, "labels": labels}
        if packed:
            # with a KV cache (config.use_cache defaults to True) transformers ignores packed position_ids
            batch.update(position_ids=extra, use_cache=False)
        else:
            batch["attention_mask"] = extra
        return batch


def mask_boundaries(batch: dict[str, Any]) -> dict[str, Any]:
    """``batch`` with its label at every sequence start (``position_ids == 0``) set to -100.

    Those labels are never next-token targets of their own sequence (unpacked, the shift
    drops them); in a packed row they would be predicted from the previous sequence.
    """
    positions, labels = batch.get("position_ids"), batch.get("labels")
    if positions is not None and labels is not None and positions.shape == labels.shape:
        batch["labels"] = labels.masked_fill(positions == 0, IGNORE)
    return batch


@dataclass
class BoundaryMasking:
    """Wraps any collator so its packed batches never train across a sequence boundary."""

    collate: Callable[[Sequence[dict[str, Any]]], dict[str, Any]]

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return mask_boundaries(self.collate(rows))


@dataclass
class FlashVarlen:
    """Wraps a collator for flash attention: packed batches get the varlen kwargs.

    transformers infers ``cu_seqlens`` from ``position_ids`` only for a batch of one row; a
    packed batch of several rows would otherwise attend across its sequences. Given
    ``cu_seq_lens_q/k`` and ``max_length_q/k`` (computed here from the flattened
    ``position_ids``), flash attention runs every sequence of every row separately.
    """

    collate: Callable[[Sequence[dict[str, Any]]], dict[str, Any]]

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collate(rows)
        positions = batch.get("position_ids")
        if positions is not None and "attention_mask" not in batch:
            from transformers.modeling_flash_attention_utils import (
                prepare_fa_kwargs_from_position_ids,
            )

            (cu_q, cu_k), (max_q, max_k) = prepare_fa_kwargs_from_position_ids(positions)
            batch.update(cu_seq_lens_q=cu_q, cu_seq_lens_k=cu_k, max_length_q=int(max_q), max_length_k=int(max_k))
        return batch


def pad_id_of(tokenizer: Any) -> int:
    """The id batches are padded with: the pad token, else EOS."""
    pad = getattr(tokenizer, "pad_token_id", None)
    return int(pad if pad is not None else tokenizer.eos_token_id)


def build_collator(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> Collator:
    """The collator for this run's rows (packed or not); pads to ``sequence_len`` with ``pad_to_sequence_len``."""
    pad = pad_id_of(tokenizer)
    fixed = cfg.sequence_len if cfg.pad_to_sequence_len else None
    return Collator(pad_id=pad, fixed_length=fixed)
