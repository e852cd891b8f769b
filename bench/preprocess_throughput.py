"""Preprocessing throughput: lathe's preparation vs a plain ``datasets.map`` + tokenizer baseline.

50k alpaca-style rows are generated here (lathe.testing.alpaca_rows), written as JSONL and
prepared twice in this process with the same tokenizer and one worker each:

- baseline: ``load_dataset("json")`` + ``map(batched)`` calling the tokenizer on the formatted
  prompt + output (no label mask, no length policy, no cache, no packing);
- lathe: ``prepare_datasets`` (alpaca strategy, masks, length policy, drop counts, report,
  packing into ``sequence_len`` bins, cache write), from an empty cache.

Prints rows/s and tokens/s of both, their ratio, lathe's packing efficiency beside plain
first-fit-decreasing on the same lengths, and the time of a cache hit.

    OMP_NUM_THREADS=1 .venv/bin/python bench/preprocess_throughput.py [--rows 50000] [--sequence-len 2048] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ALPACA = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)


def ffd_bins(lengths: list[int], capacity: int) -> int:
    """Bins plain first-fit-decreasing needs (the reference packer), via a free-space segment tree."""
    size = 1
    while size < len(lengths):
        size *= 2
    free = [capacity] * (2 * size)
    used = 0
    for need in sorted(lengths, reverse=True):
        node = 1
        while node < size:
            node = 2 * node if free[2 * node] >= need else 2 * node + 1
        used = max(used, node - size + 1)
        free[node] -= need
        node //= 2
        while node:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2
    return used


def main() -> None:
    import datasets

    from lathe.config import validate
    from lathe.data.prepare import prepare_datasets
    from lathe.plugins import Plugins
    from lathe.testing import alpaca_rows, tiny_tokenizer, write_jsonl

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--sequence-len", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    tok = tiny_tokenizer()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(alpaca_rows(args.rows, seed=1), Path(tmp) / "alpaca.jsonl")

        def plain(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
            texts = [ALPACA.format(instruction=i, input=x) + o for i, x, o in
                     zip(batch["instruction"], batch["input"], batch["output"], strict=True)]
            return {"input_ids": tok(texts)["input_ids"]}

        base_times, lathe_times = [], []
        for attempt in range(args.repeat):  # interleaved; the best of each counts (shared CPUs are noisy)
            start = time.perf_counter()
            raw = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=f"{tmp}/hf-base{attempt}")
            base = raw.map(plain, batched=True, remove_columns=raw.column_names)
            base_times.append(time.perf_counter() - start)

            cfg = validate({
                "base_model": "unused", "output_dir": f"{tmp}/out", "dataset_prepared_path": f"{tmp}/prepared{attempt}",
                "datasets": [{"path": str(path), "type": "alpaca"}], "sequence_len": args.sequence_len,
                "sample_packing": True, "dataset_processes": 1, "micro_batch_size": 1,
            }, Plugins())
            datasets.config.HF_DATASETS_CACHE = Path(tmp) / f"hf-lathe{attempt}"
            start = time.perf_counter()
            data = prepare_datasets(cfg, tok, Plugins())
            lathe_times.append(time.perf_counter() - start)
        base_s, lathe_s = min(base_times), min(lathe_times)
        base_tokens = sum(len(x) for x in base["input_ids"])
        start = time.perf_counter()
        prepare_datasets(cfg, tok, Plugins())
        hit_s = time.perf_counter() - start

        report = data.report
        print(f"rows: {args.rows}, sequence_len: {args.sequence_len}, tokenizer: lathe.testing.tiny_tokenizer, "
              f"1 process, best of {args.repeat}")
        print(f"baseline (datasets.map + tokenizer): {base_s:7.2f} s  {args.rows / base_s:9.0f} rows/s  "
              f"{base_tokens / base_s:10.0f} tokens/s")
        print(f"lathe prepare_datasets (cold cache): {lathe_s:7.2f} s  {args.rows / lathe_s:9.0f} rows/s  "
              f"{report.tokens / lathe_s:10.0f} tokens/s")
        print(f"ratio lathe / baseline (rows/s):      {base_s / lathe_s:.2f}")
        print(f"all attempts (s): baseline {[round(t, 2) for t in base_times]}, lathe {[round(t, 2) for t in lathe_times]}")
        print(f"cache hit: {hit_s:.2f} s ({lathe_s / hit_s:.0f}x faster than preparing)")
        print(f"trainable tokens: {report.trainable_share:.1%}, dropped: {report.dropped or 'none'}")
        seq_lengths = []
        for row in data.train["position_ids"]:
            starts = [i for i, p in enumerate(row) if p == 0] + [len(row)]
            seq_lengths += [b - a for a, b in zip(starts, starts[1:], strict=False)]
        ffd = ffd_bins(seq_lengths, args.sequence_len)
        ffd_eff = sum(seq_lengths) / (ffd * args.sequence_len)
        print(f"packing efficiency: lathe {report.packing_efficiency:.4f} ({report.bins} bins), "
              f"plain FFD {ffd_eff:.4f} ({ffd} bins), ratio {report.packing_efficiency / ffd_eff:.4f}")


if __name__ == "__main__":
    main()
