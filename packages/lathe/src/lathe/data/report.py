"""What preparation did to the data, reported before training (and saved with the cache)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

HISTOGRAM_BUCKETS = 8


@dataclass
class PrepReport:
    rows_in: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    trained_tokens: int = 0
    eos_trained: int = 0  # trained EOS and end-of-turn (eot_tokens) tokens
    length_histogram: dict[str, int] = field(default_factory=dict)
    packing_efficiency: float | None = None
    bins: int | None = None
    eval_rows: int = 0

    @property
    def trainable_share(self) -> float:
        return self.trained_tokens / self.tokens if self.tokens else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "trainable_share": self.trainable_share}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrepReport:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**data)

    def lines(self) -> list[str]:
        drops = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dropped.items())) or "none"
        out = [
            f"rows: {self.rows_in} read, {self.rows_kept} kept for training, {self.eval_rows} for eval; dropped: {drops}",
            f"tokens: {self.tokens}, trained {self.trained_tokens} ({self.trainable_share:.1%})",
            f"EOS trained: {'yes' if self.eos_trained else 'NO'} ({self.eos_trained} EOS or end-of-turn tokens)",
            "lengths: " + ", ".join(f"{b}: {n}" for b, n in self.length_histogram.items()),
        ]
        if self.packing_efficiency is not None:
            out.append(f"packing: {self.bins} bins, efficiency {self.packing_efficiency:.4f}")
        return out


def measure(ds: datasets.Dataset, end_ids: Collection[int], sequence_len: int, report: PrepReport) -> list[int]:
    """Fill token counts and the length histogram from tokenized rows; returns row lengths.

    Reads the memory-mapped Arrow columns a batch at a time, so the whole dataset is never
    held in memory.
    """
    import numpy as np
    import pyarrow.compute as pc

    lengths: list[int] = []
    for batch in ds.with_format("arrow").iter(batch_size=10_000):
        ids, labels = batch.column("input_ids"), batch.column("labels")
        flat_ids = pc.list_flatten(ids).to_numpy()
        trained = pc.list_flatten(labels).to_numpy() != -100
        lengths += pc.list_value_length(ids).to_pylist()
        report.trained_tokens += int(trained.sum())
        if end_ids:
            report.eos_trained += int((trained & np.isin(flat_ids, list(end_ids))).sum())
    report.tokens = int(np.sum(lengths)) if lengths else 0
    width = max(sequence_len // HISTOGRAM_BUCKETS, 1)
    buckets = Counter((n - 1) // width for n in lengths)
    report.length_histogram = {
        f"{b * width + 1}-{(b + 1) * width}": buckets.get(b, 0) for b in range(-(-sequence_len // width))
    }
    return lengths
