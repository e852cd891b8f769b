"""Running a prompt strategy over a dataset: the length policy, and counting every dropped row."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from lathe.data.strategies import IGNORE, Example, MissingField, PromptStrategy
from lathe.errors import LatheError

if TYPE_CHECKING:
    import datasets

DROP = "_drop"
TOO_LONG = "longer than sequence_len"
NO_TRAINABLE = "no trainable token"
EMPTY = "empty after tokenizing"
TOO_SHORT = "shorter than min_sample_len"
MIN_SAMPLE_LEN = 2
ROWS_PER_WORKER = 256  # fewer rows than this per process cost more to ship than to tokenize


def apply_length_policy(
    example: Example, sequence_len: int, policy: str, where: str, min_len: int = MIN_SAMPLE_LEN
) -> tuple[Example, str]:
    """The example after ``excess_length_strategy``, and the reason it is dropped ("" when kept).

    Rows shorter than ``min_len`` tokens (``min_sample_len``, default 2 as Axolotl) are dropped.
    """
    n = len(example["input_ids"])
    if n == 0:
        return example, EMPTY
    if n < min_len:
        return example, TOO_SHORT
    if n > sequence_len:
        if policy == "raise":
            raise LatheError(f"{where}: {n} tokens exceed sequence_len {sequence_len} (excess_length_strategy: raise)")
        if policy == "drop":
            return example, TOO_LONG
        example = {key: values[:sequence_len] for key, values in example.items()}  # every column is per token
    if all(label == IGNORE for label in example["labels"]):
        return example, NO_TRAINABLE
    return example, ""


def _name_the_failing_row(strategy: PromptStrategy, rows: list[dict[str, Any]], indices: list[int], where: str) -> None:
    """Tokenize one row at a time to raise the batch's error with the row that caused it."""
    for row, index in zip(rows, indices, strict=True):
        try:
            strategy.tokenize_batch([row])
        except MissingField as exc:
            raise LatheError(f"{where} row {index}: missing field {exc.field!r}") from None
        except LatheError as exc:
            raise LatheError(f"{where} row {index}: {exc}") from None


def _tokenize_batch(
    batch: dict[str, list[Any]], indices: list[int], *, strategy: PromptStrategy, where: str,
) -> dict[str, list[Any]]:
    names = list(batch)
    rows = [{name: batch[name][i] for name in names} for i in range(len(indices))]
    span = f"rows {indices[0]}-{indices[-1]}" if indices else "rows"
    try:
        examples = strategy.tokenize_batch(rows)
    except LatheError as exc:
        _name_the_failing_row(strategy, rows, indices, where)
        detail = f"a row has no field {exc.field!r}" if isinstance(exc, MissingField) else str(exc)
        raise LatheError(f"{where} {span}: {detail}") from None
    out: dict[str, list[Any]] = {"input_ids": [], "labels": [], DROP: []}
    cfg = strategy.cfg
    for k, example in enumerate(examples):
        row_where = f"{where} chunk {k} of {span}" if strategy.batched else f"{where} row {indices[k]}"
        example, reason = apply_length_policy(example, cfg.sequence_len, cfg.excess_length_strategy, row_where,
                                              cfg.min_sample_len or MIN_SAMPLE_LEN)
        for key, values in example.items():  # input_ids, labels, and any per-token column a strategy adds
            out.setdefault(key, []).append(values)
        out[DROP].append(reason)
    return out


READ = "_read"


def _streamed_rows(stream: datasets.IterableDataset, strategy: PromptStrategy, where: str):  # type: ignore[no-untyped-def]
    """Tokenized rows of a stream, a batch at a time; ``_read`` counts the source rows behind them."""
    start = 0
    for batch in stream.iter(batch_size=strategy.rows_per_batch()):
        n = len(next(iter(batch.values()))) if batch else 0
        out = _tokenize_batch(batch, list(range(start, start + n)), strategy=strategy, where=where)
        names = list(out)
        for k in range(len(out[DROP])):
            yield {**{name: out[name][k] for name in names}, READ: n if k == 0 else 0}
        start += n


def _tokenize_stream(
    stream: datasets.IterableDataset, strategy: PromptStrategy, where: str, fingerprint: str
) -> tuple[datasets.Dataset, int]:
    """A stream tokenized into an on-disk dataset (written in batches: memory stays bounded)."""
    import datasets

    try:
        rows = datasets.Dataset.from_generator(
            _streamed_rows, gen_kwargs={"stream": stream, "strategy": strategy, "where": where},
            fingerprint=fingerprint,
        )
    except datasets.exceptions.DatasetGenerationError as exc:  # the generator's own error, unwrapped
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, LatheError):
            raise cause from None
        raise
    read = sum(sum(batch[READ]) for batch in rows.iter(batch_size=10_000))
    return rows.remove_columns(READ), read


def tokenize_dataset(
    ds: datasets.Dataset | datasets.IterableDataset, strategy: PromptStrategy, where: str, num_proc: int | None,
    fingerprint: str,
) -> tuple[datasets.Dataset, Counter[str], int]:
    """Tokenized, masked rows that are kept, the count of dropped rows by reason, and rows read.

    A streamed source (``streaming: true``) is read and tokenized as it arrives.
    """
    import datasets

    if isinstance(ds, datasets.IterableDataset):
        tokenized, read = _tokenize_stream(ds, strategy, where, fingerprint)
    else:
        read = len(ds)
        tokenized = ds.map(
            _tokenize_batch,
            batched=True,
            batch_size=strategy.rows_per_batch(),
            with_indices=True,
            remove_columns=ds.column_names,
            num_proc=workers if (workers := min(num_proc or 1, len(ds) // ROWS_PER_WORKER)) > 1 else None,
            fn_kwargs={"strategy": strategy, "where": where},
            new_fingerprint=fingerprint,
            desc=f"tokenizing {where}",
        )
    reasons = Counter(r for r in tokenized[DROP] if r)
    if reasons:
        tokenized = tokenized.filter(lambda r: [not x for x in r], batched=True, input_columns=[DROP],
                                     new_fingerprint=fingerprint + "-kept")
    return tokenized.remove_columns(DROP), reasons, read
