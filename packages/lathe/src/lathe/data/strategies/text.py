"""Raw-text strategies: completion, input_output segments, and pretraining chunks."""

from __future__ import annotations

from typing import Any, ClassVar

from lathe.data.strategies import IGNORE, Example, PromptStrategy
from lathe.errors import LatheError


class CompletionStrategy(PromptStrategy):
    """Every token of ``field`` (default ``text``) is trained, followed by EOS."""

    keys: ClassVar[dict[str, Any]] = {"field": "text"}

    def tokenize(self, row: dict[str, Any]) -> Example:
        ids = self.encode(str(self.field(row, self.options["field"])), first=True)
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return {"input_ids": ids, "labels": list(ids)}


class InputOutputStrategy(PromptStrategy):
    """``segments: [{text, label}]``; segments with ``label: false`` are masked. No EOS is added."""

    keys: ClassVar[dict[str, Any]] = {"field": "segments"}

    def tokenize(self, row: dict[str, Any]) -> Example:
        input_ids: list[int] = []
        labels: list[int] = []
        for i, segment in enumerate(self.field(row, self.options["field"])):
            if not isinstance(segment, dict) or "text" not in segment:
                raise LatheError(f"segment {i} is not a {{text, label}} mapping")
            ids = self.encode(str(segment["text"]), first=i == 0)
            input_ids += ids
            labels += ids if segment.get("label", True) else [IGNORE] * len(ids)
        return {"input_ids": input_ids, "labels": labels}


class PretrainStrategy(PromptStrategy):
    """Texts joined with EOS and cut into ``sequence_len`` chunks, all trained.

    Rows are processed in batches (``datasets.map(batched=True)`` writes each batch to disk),
    so data larger than memory is fine; only a batch's last chunk may be shorter.
    """

    keys: ClassVar[dict[str, Any]] = {"field": "text"}
    batched: ClassVar[bool] = True

    def tokenize_batch(self, rows: list[dict[str, Any]]) -> list[Example]:
        stream: list[int] = []
        eos = self.tokenizer.eos_token_id
        for row in rows:
            stream += self.encode(str(self.field(row, self.options["field"])), first=True)
            if eos is not None:
                stream.append(eos)
        size = self.cfg.sequence_len
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        return [{"input_ids": c, "labels": list(c)} for c in chunks]
