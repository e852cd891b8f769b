"""From a validated config to training rows: read, tokenize and mask, split, pack, cache.

The prepared set is cached by a content hash (:mod:`lathe.data.cache`); a second run with
the same data, tokenizer and data-affecting keys loads it without tokenizing again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lathe.data.cache import cache_key, cached, file_digest, prepared_root
from lathe.data.dedup import REASON as DEDUP_REASON
from lathe.data.dedup import drop_exact_duplicates
from lathe.data.packing import (
    balance_bins,
    bin_order,
    pack_dataset,
    pack_sequences,
    packing_efficiency,
)
from lathe.data.report import PrepReport, measure
from lathe.data.sources import load_source, local_files
from lathe.data.strategies import PromptStrategy, build_strategy, strategy_registry
from lathe.data.tokenize import tokenize_dataset
from lathe.errors import LatheError

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

    from lathe.config import Config, DatasetConfig
    from lathe.plugins import Plugins

log = logging.getLogger("lathe.data")
Plan = list[tuple[str, "DatasetConfig", PromptStrategy]]


class DataWarning(UserWarning):
    """Prepared data that will train badly (no EOS trained, few trained tokens)."""


@dataclass
class PreparedData:
    """Training rows (``input_ids``, ``labels``; packed rows add ``position_ids``), eval rows, report."""

    train: datasets.Dataset
    eval: datasets.Dataset | None
    report: PrepReport
    path: Path | None = None


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def bins_multiple(cfg: Config, eval_set: bool = False) -> int:
    """Packed training bins are made divisible by this, so every rank gets the same number of
    batches; eval bins only by the world size (the eval loop accepts a short last batch)."""
    return world_size() if eval_set else cfg.micro_batch_size * world_size()


def _source_id(entry: DatasetConfig, where: str) -> str:
    files = local_files(entry, where)
    if files is None:
        return f"hub:{entry.path}:{entry.name}:{entry.revision}:{entry.data_files}:{entry.split}"
    return f"files:{file_digest(files)}"


def _tokenize_all(cfg: Config, plan: Plan, key: str, report: PrepReport) -> datasets.Dataset | None:
    import datasets

    parts = []
    for where, entry, strategy in plan:
        raw = load_source(entry, where)
        processes = cfg.dataset_processes or os.cpu_count()
        rows, reasons, read = tokenize_dataset(raw, strategy, where, processes, f"{key}-{where}")
        report.rows_in += read
        for reason, n in reasons.items():
            report.dropped[reason] = report.dropped.get(reason, 0) + n
        if len(rows) == 0:
            why = ", ".join(f"{n} {r}" for r, n in reasons.items()) or "it has no rows"
            raise LatheError(f"{where}: no row is left after filtering ({read} read; dropped: {why}; "
                             f"sequence_len is {cfg.sequence_len})")
        parts.append(rows)
    if not parts:
        return None
    merged = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if cfg.dataset_exact_deduplication:
        merged, repeats = drop_exact_duplicates(merged)
        if repeats:
            report.dropped[DEDUP_REASON] = report.dropped.get(DEDUP_REASON, 0) + repeats
    if cfg.shuffle_merged_datasets and len(parts) > 1:
        merged = merged.shuffle(seed=cfg.seed).flatten_indices()
    return merged


def _pack(
    rows: datasets.Dataset, lengths: list[int], cfg: Config, multiple: int, report: PrepReport | None, path: Path
) -> datasets.Dataset:
    bins, dropped = balance_bins(pack_sequences(lengths, cfg.sequence_len), lengths, multiple)
    if not bins:
        raise LatheError(f"sample_packing: {len(lengths)} sequences cannot fill {multiple} bins "
                         "(micro_batch_size x world size); add data or lower micro_batch_size")
    bins = [bins[i] for i in bin_order(len(bins), cfg.seed, epoch=0)]
    if report is not None:
        if dropped:
            report.dropped["rank balance (too few sequences to fill every rank)"] = dropped
        kept = [lengths[i] for b in bins for i in b]
        report.bins = len(bins)
        report.packing_efficiency = packing_efficiency(kept, len(bins), cfg.sequence_len)
    return pack_dataset(rows, bins, path)


def _end_ids(plan: Plan, eos: int | None) -> set[int]:
    """EOS and the end-of-turn tokens of the plan's chat strategies: the tokens that teach stopping."""
    ends = {eos} if eos is not None else set()
    for _, _, strategy in plan:
        ends |= set(getattr(strategy, "eot_ids", ()))
    return ends


def _tokenized(cfg: Config, train_plan: Plan, test_plan: Plan, key: str, eos: int | None) -> PreparedData:
    """Stage 1: read, tokenize, mask, filter, split (independent of batch size and world size)."""
    report = PrepReport()
    train = _tokenize_all(cfg, train_plan, key, report)
    assert train is not None
    evaluation = _tokenize_all(cfg, test_plan, key + "-test", PrepReport()) if test_plan else None
    if evaluation is None and cfg.val_set_size:
        size = cfg.val_set_size if cfg.val_set_size < 1 else int(cfg.val_set_size)
        if isinstance(size, int) and size >= len(train):
            raise LatheError(f"val_set_size: {size} rows requested but only {len(train)} rows are left for training")
        split = train.train_test_split(test_size=size, seed=cfg.seed, shuffle=True)
        train, evaluation = split["train"].flatten_indices(), split["test"].flatten_indices()
    measure(train, _end_ids(train_plan, eos), cfg.sequence_len, report)
    report.rows_kept = len(train)
    report.eval_rows = len(evaluation) if evaluation is not None else 0
    return PreparedData(train, evaluation, report)


def _row_lengths(ds: datasets.Dataset) -> list[int]:
    import pyarrow.compute as pc

    lengths: list[int] = []
    for batch in ds.with_format("arrow").iter(batch_size=10_000):
        lengths += pc.list_value_length(batch.column("input_ids")).to_pylist()
    return lengths


def _write_packed(cfg: Config, data: PreparedData, folder: Path) -> None:
    """Stage 2: pack the tokenized rows into bins divisible by micro_batch_size x world size."""
    scratch = folder / "scratch"
    report = PrepReport.from_json(data.report.to_json())
    report.dropped = dict(report.dropped)
    train = data.train
    if cfg.sample_packing:
        train = _pack(train, _row_lengths(train), cfg, bins_multiple(cfg), report, scratch / "train.arrow")
    evaluation = data.eval
    eval_packing = cfg.sample_packing if cfg.eval_sample_packing is None else cfg.eval_sample_packing
    if evaluation is not None and eval_packing and len(evaluation):
        multiple = bins_multiple(cfg, eval_set=True)
        evaluation = _pack(evaluation, _row_lengths(evaluation), cfg, multiple, None, scratch / "eval.arrow")
    _save(PreparedData(train, evaluation, report), folder)
    shutil.rmtree(scratch, ignore_errors=True)


def _save(data: PreparedData, folder: Path) -> None:
    data.train.save_to_disk(str(folder / "train"))
    if data.eval is not None:
        data.eval.save_to_disk(str(folder / "eval"))
    (folder / "report.json").write_text(json.dumps(data.report.to_json(), indent=1))


def load_prepared(folder: Path) -> PreparedData:
    import datasets

    evaluation = datasets.load_from_disk(str(folder / "eval")) if (folder / "eval").exists() else None
    report = PrepReport.from_json(json.loads((folder / "report.json").read_text()))
    return PreparedData(datasets.load_from_disk(str(folder / "train")), evaluation, report, folder)


def _plan(cfg: Config, tokenizer: PreTrainedTokenizerBase, plugins: Plugins) -> tuple[Plan, Plan]:
    registry = strategy_registry(plugins)
    if cfg.pretraining_dataset:
        entries, name = [p.as_dataset() for p in cfg.pretraining_dataset], "pretraining_dataset"
    else:
        entries, name = list(cfg.datasets), "datasets"
    train = [(f"{name}[{i}]", e, build_strategy(e, f"{name}[{i}]", cfg, tokenizer, registry, plugins))
             for i, e in enumerate(entries)]
    test = [(f"test_datasets[{i}]", e, build_strategy(e, f"test_datasets[{i}]", cfg, tokenizer, registry, plugins))
            for i, e in enumerate(cfg.test_datasets or [])]
    return train, test


def prepare_datasets(cfg: Config, tokenizer: PreTrainedTokenizerBase, plugins: Plugins) -> PreparedData:
    """The run's prepared data, from the cache when its key matches, else built and cached."""
    train_plan, test_plan = _plan(cfg, tokenizer, plugins)
    sources = [_source_id(e, w) + s.source_digest() for w, e, s in train_plan] + ["test"]
    sources += [_source_id(e, w) + s.source_digest() for w, e, s in test_plan]
    # the seed shapes the split, the shuffle and the bin order, though it lives outside the data keys
    key = cache_key(cfg, tokenizer, sources, {"seed": cfg.seed})
    root = prepared_root(cfg)
    folder, built_here = cached(
        root, key, lambda f: _save(_tokenized(cfg, train_plan, test_plan, key, tokenizer.eos_token_id), f)
    )
    data = load_prepared(folder)
    if cfg.sample_packing or cfg.eval_sample_packing:
        # Packing is cached apart, keyed also by micro_batch_size x world size: `lathe preprocess`
        # on one CPU machine tokenizes once, and a multi-GPU run only re-packs (one rank, others wait).
        multiples = f"{bins_multiple(cfg)}-{bins_multiple(cfg, eval_set=True)}"
        folder, packed_here = cached(root, f"{key}-packed-{multiples}", lambda f: _write_packed(cfg, data, f))
        data = load_prepared(folder)
        built_here = built_here or packed_here
    log.info("prepared data %s (%s)", folder, "built" if built_here else "loaded from cache")
    for line in data.report.lines():
        log.info(line)
    predicts_tokens = all(s.next_token_labels for _, _, s in train_plan)
    if data.report.eos_trained == 0 and tokenizer.eos_token_id is not None and predicts_tokens:
        warnings.warn("no EOS or end-of-turn token is trained: the model will not learn to stop "
                      "(check train_on_eos / train_on_eot)",
                      DataWarning, stacklevel=2)
    return data

