"""Raw-text strategies: completion, input_output segments, and pretraining documents (Axolotl's meanings)."""

from __future__ import annotations

from typing import Any, ClassVar

from lathe.data.strategies import IGNORE, Example, PromptStrategy
from lathe.errors import LatheError

PRETRAIN_BATCH = 10_000
"""Documents tokenized together for pretraining: concatenated rows never span two such batches."""
COMPLETION_WINDOWS = 64
"""A completion text is read up to this many ``sequence_len`` chunks (as Axolotl); the rest is cut."""
PRETRAIN_MAX_STRIDE = 256
"""Tokens each packed pretraining window repeats from the one before it: ``min(256, (sequence_len - 1) // 2)``."""


class CompletionStrategy(PromptStrategy):
    """Every token of ``field`` (default ``text``), BOS and EOS included, cut into ``sequence_len`` chunks.

    A text longer than ``sequence_len`` becomes several rows, all trained; the first starts with
    the tokenizer's BOS (if it adds one) and the last ends with EOS. Texts are read up to
    ``64 × sequence_len`` tokens; the rest is cut, and then no EOS is added.
    """

    keys: ClassVar[dict[str, Any]] = {"field": "text"}
    batched: ClassVar[bool] = True

    def tokenize_batch(self, rows: list[dict[str, Any]]) -> list[Example]:
        size = self.cfg.sequence_len
        limit = size * COMPLETION_WINDOWS
        texts = [str(self.field(row, self.options["field"])) for row in rows]
        eos = self.tokenizer.eos_token_id
        out: list[Example] = []
        for text, ids in zip(texts, self.tokenizer(texts, truncation=True, max_length=limit)["input_ids"], strict=True):
            ids = list(ids) if text else []
            if ids and ids[-1] != eos and len(ids) < limit and eos is not None:
                ids.append(eos)
            out += [{"input_ids": ids[i : i + size], "labels": ids[i : i + size]} for i in range(0, len(ids), size)]
        return out


class InputOutputStrategy(PromptStrategy):
    """``segments: [{text, label}]``, tokenized without any special token (no BOS, no EOS).

    Segments with ``label: false`` are masked, unless ``train_on_inputs`` trains every segment.
    Special tokens are written into the segments' text by the user.
    """

    keys: ClassVar[dict[str, Any]] = {"field": "segments"}

    def tokenize(self, row: dict[str, Any]) -> Example:
        input_ids: list[int] = []
        labels: list[int] = []
        for i, segment in enumerate(self.field(row, self.options["field"])):
            if not isinstance(segment, dict) or "text" not in segment:
                raise LatheError(f"segment {i} is not a {{text, label}} mapping")
            ids = self.encode(str(segment["text"]), first=False)
            input_ids += ids
            trained = segment.get("label", True) or self.cfg.train_on_inputs
            labels += ids if trained else [IGNORE] * len(ids)
        return {"input_ids": input_ids, "labels": labels}


class PretrainStrategy(PromptStrategy):
    """Documents of ``field`` (default ``text``) for pretraining, kept apart as Axolotl's stream keeps them.

    - ``sample_packing: true``: each document is cut into windows of ``sequence_len - 1`` tokens
      (the tokenizer's BOS starts each one), each window repeating the last
      ``min(256, (sequence_len - 1) // 2)`` tokens of the one before, and ends with EOS; the
      windows are then packed (no attention across them).
    - unpacked, ``pretraining_sample_concatenation: true``: documents cut at ``sequence_len - 2``
      tokens, each followed by EOS (trained) and a pad token (not trained), are laid one after
      another into rows of exactly ``sequence_len`` (a document that does not fit starts a new
      row; the rest of the row is padding, not trained). Rows restart every
      ``streaming_multipack_buffer_size`` documents (default 10,000), as Axolotl's stream batches.
    - unpacked otherwise: one row per document, cut at ``sequence_len - 2`` tokens, no EOS.
    """

    keys: ClassVar[dict[str, Any]] = {"field": "text"}
    batched: ClassVar[bool] = True

    def rows_per_batch(self) -> int:
        """``streaming_multipack_buffer_size`` documents (default 10,000, as Axolotl's stream batches)."""
        return self.cfg.streaming_multipack_buffer_size or PRETRAIN_BATCH

    def tokenize_batch(self, rows: list[dict[str, Any]]) -> list[Example]:
        texts = [str(self.field(row, self.options["field"])) for row in rows]
        if self.cfg.sample_packing:
            return self._windows(texts)
        docs = [list(ids) for ids in self.tokenizer(texts, truncation=True, max_length=self.cfg.sequence_len - 2)["input_ids"]]
        if self.cfg.pretraining_sample_concatenation:
            return self._concatenated(docs)
        return [{"input_ids": ids, "labels": list(ids)} for ids in docs]

    def _windows(self, texts: list[str]) -> list[Example]:
        size = self.cfg.sequence_len - 1  # room for the EOS each window ends with
        stride = min(PRETRAIN_MAX_STRIDE, (self.cfg.sequence_len - 1) // 2)
        head, tail = special_tokens_around(self.tokenizer)
        width = size - len(head) - len(tail)
        if width <= stride:
            raise LatheError(f"sequence_len {self.cfg.sequence_len} is too short for pretraining windows")
        eos = self.tokenizer.eos_token_id
        out: list[Example] = []
        for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]:
            for window in overlapping_windows(list(ids), width, stride):
                row = [*head, *window, *tail, eos]
                out.append({"input_ids": row, "labels": list(row)})
        return out

    def _concatenated(self, docs: list[list[int]]) -> list[Example]:
        size = self.cfg.sequence_len
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        rows: list[Example] = []
        ids: list[int] = []
        labels: list[int] = []
        for doc in docs:
            piece, piece_labels = [*doc, eos, pad], [*doc, eos, IGNORE]
            if ids and len(ids) + len(piece) > size:
                fill = size - len(ids)
                rows.append({"input_ids": ids + [pad] * fill, "labels": labels + [IGNORE] * fill})
                ids, labels = [], []
            ids, labels = ids + piece, labels + piece_labels
        if ids:
            fill = size - len(ids)
            rows.append({"input_ids": ids + [pad] * fill, "labels": labels + [IGNORE] * fill})
        return rows


def overlapping_windows(ids: list[int], width: int, stride: int) -> list[list[int]]:
    """``ids`` cut into windows of ``width`` tokens, each repeating the last ``stride`` of the one before.

    The windows a fast tokenizer's ``return_overflowing_tokens`` gives (transformers >= 5.17);
    the last window ends with the last token, and there is always at least one.
    """
    windows = [ids[:width]]
    start = 0
    while start + width < len(ids):
        start += width - stride
        windows.append(ids[start : start + width])
    return windows


def special_tokens_around(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The tokens the tokenizer adds before and after a text (its BOS, and EOS for some)."""
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("a")["input_ids"])
    at = next(i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain)
    return full[:at], full[at + len(plain) :]
