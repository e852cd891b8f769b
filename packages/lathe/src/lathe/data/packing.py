"""Sample packing: decreasing-order bins of ``sequence_len`` tokens filled exactly, balanced across ranks.

A packed row concatenates whole sequences; its ``position_ids`` restart at 0 for each, which
is how transformers' masking utilities recognise the sequence boundaries and build a
block-diagonal causal mask (no attention crosses sequences).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa


def _best_fill(counts: dict[int, int], room: int) -> list[int]:
    """Lengths (with repeats, within ``counts``) whose sum comes closest to ``room`` without exceeding it.

    Subset-sum over a bitset (bit s set = sum s reachable); each copy of a length is one
    0/1 item, and the states kept before each copy let the choice be traced back.
    """
    mask = (1 << (room + 1)) - 1
    reach = 1
    copies: list[tuple[int, int]] = []  # (length, reach before this copy)
    for length in sorted(counts, reverse=True):
        for _ in range(min(counts[length], room // length)):
            copies.append((length, reach))
            reach = (reach | (reach << length)) & mask
    target = reach.bit_length() - 1
    chosen = []
    for length, before in reversed(copies):
        if target and not (before >> target) & 1:
            chosen.append(length)
            target -= length
    return chosen


def pack_sequences(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into bins of at most ``capacity`` tokens.

    Decreasing order like first-fit-decreasing, but each bin is filled exactly: it opens
    with the longest sequence left, and the rest of its room is filled with the subset of
    the remaining sequences whose total comes closest to that room. Plain FFD leaves up to
    one shortest-sequence of slack per bin (0.96 efficiency on lathe's alpaca fixture at
    512 tokens); the exact fill brings it above 0.99. Deterministic: equal lengths are
    taken in index order.
    """
    buckets: dict[int, list[int]] = {}
    for i in sorted(range(len(lengths)), key=lambda i: (lengths[i], -i), reverse=True):
        if lengths[i] > capacity:
            raise ValueError(f"item of length {lengths[i]} exceeds the bin capacity {capacity}")
        buckets.setdefault(lengths[i], []).append(i)
    for bucket in buckets.values():
        bucket.reverse()  # pop() now yields the lowest index first
    bins: list[list[int]] = []
    while buckets:
        longest = max(buckets)
        members = [buckets[longest].pop()]
        if not buckets[longest]:
            del buckets[longest]
        fill = _best_fill({n: len(b) for n, b in buckets.items()}, capacity - lengths[members[0]])
        for length in fill:
            members.append(buckets[length].pop())
            if not buckets[length]:
                del buckets[length]
        bins.append(members)
    return bins


def balance_bins(bins: list[list[int]], lengths: list[int], multiple: int) -> tuple[list[list[int]], int]:
    """Make the bin count divisible by ``multiple`` (micro_batch_size × world size).

    Every rank then gets the same number of full batches. Bins are split (the shortest
    sequence of the fullest multi-sequence bin moves to a new bin) until the count
    divides; only when no bin holds two sequences are the last bins dropped. Returns the
    bins and the number of sequences dropped.
    """
    bins = [list(b) for b in bins]
    while len(bins) % multiple:
        splittable = [b for b in bins if len(b) > 1]
        if not splittable:
            cut = len(bins) % multiple
            dropped = sum(len(b) for b in bins[-cut:])
            return bins[:-cut], dropped
        fullest = max(splittable, key=lambda b: sum(lengths[i] for i in b))
        shortest = min(fullest, key=lambda i: (lengths[i], i))
        fullest.remove(shortest)
        bins.append([shortest])
    return bins, 0


def bin_order(n_bins: int, seed: int, epoch: int) -> list[int]:
    """The order bins are visited in for one epoch: a permutation fixed by seed and epoch."""
    order = list(range(n_bins))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order


def packing_efficiency(lengths: list[int], n_bins: int, capacity: int) -> float:
    return sum(lengths) / (n_bins * capacity) if n_bins else 0.0


def _pack_group(ds: datasets.Dataset, bins: list[list[int]]) -> pa.Table:
    """The packed rows of ``bins`` as one Arrow table."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    table = ds.select([i for b in bins for i in b]).with_format("arrow")[:]
    ids = table.column("input_ids").combine_chunks()
    seq_lens = pc.list_value_length(ids).to_numpy()
    seq_starts = np.concatenate([[0], np.cumsum(seq_lens)[:-1]])
    positions = np.arange(int(seq_lens.sum()), dtype=np.int64) - np.repeat(seq_starts, seq_lens)
    bin_seq_ends = np.cumsum([len(b) for b in bins])
    tok_ends = np.concatenate([[0], np.cumsum(seq_lens)])[bin_seq_ends]
    offsets = pa.array(np.concatenate([[0], tok_ends]).astype(np.int32))

    def listed(values: pa.Array) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, values)

    columns = {"input_ids": listed(pc.list_flatten(ids))}
    for name in table.column_names:  # labels, and any other per-token column a strategy added
        if name not in columns:
            columns[name] = listed(pc.list_flatten(table.column(name).combine_chunks()))
    return pa.table({**columns, "position_ids": listed(pa.array(positions))})


def pack_dataset(
    ds: datasets.Dataset, bins: list[list[int]], path: Path | None = None, bins_per_group: int = 4096
) -> datasets.Dataset:
    """One row per bin: ``input_ids``, ``labels`` and any other per-token column a strategy added
    (e.g. a teacher's logprobs) concatenated, ``position_ids`` restarting per sequence.

    Bins are packed a group at a time; with ``path`` each group is appended to that Arrow
    file and the result is memory-mapped from it, so data larger than memory packs too.
    """
    import datasets
    import pyarrow as pa
    from datasets.arrow_writer import ArrowWriter

    if not bins:
        return datasets.Dataset.from_dict({name: [] for name in [*ds.column_names, "position_ids"]})
    groups = (bins[i : i + bins_per_group] for i in range(0, len(bins), bins_per_group))
    if path is None:
        return datasets.Dataset(pa.concat_tables([_pack_group(ds, g) for g in groups]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with ArrowWriter(path=str(path)) as writer:
        for group in groups:
            writer.write_table(_pack_group(ds, group))
        writer.finalize()
    return datasets.Dataset.from_file(str(path))
