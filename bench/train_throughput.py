"""Tokens/s and peak RSS of `lathe train` against a plain transformers Trainer loop.

Same small model (2 layers, hidden 256), same tokenized rows (variable length: 80% short,
20% long, as chat data is), same micro-batch size and
sequence length, one epoch each; lathe with packing off and on. Each variant runs in its
own process (so peak RSS is its own) and the best of ``--repeats`` runs is kept.

    .venv/bin/python bench/train_throughput.py [--rows 512] [--repeats 2]

Targets: lathe ≥ 1.0× the plain loop unpacked, ≥ 1.5× with packing.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MICRO_BATCH, SEQ_LEN = 8, 512


def write_workspace(root: Path, rows: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from lathe.testing import tiny_tokenizer, write_jsonl
    from lathe.testing.data import _WORDS
    from lathe.testing.models import tiny_model_config

    rng = random.Random(0)
    model = root / "model"
    if not (model / "config.json").exists():
        tok = tiny_tokenizer()
        torch.manual_seed(0)
        config = tiny_model_config("llama", vocab_size=len(tok), hidden_size=256, intermediate_size=1024,
                                   num_attention_heads=4, num_key_value_heads=4)
        AutoModelForCausalLM.from_config(config).save_pretrained(model)
        tok.save_pretrained(model)

    def length() -> int:  # chat-like: mostly short answers, some long ones
        return rng.randint(4, 30) if rng.random() < 0.8 else rng.randint(100, 200)

    data = root / "data.jsonl"
    write_jsonl(
        ({"instruction": "Continue the list.", "input": "",
          "output": " ".join(rng.choice(_WORDS) for _ in range(length()))} for _ in range(rows)),
        data,
    )
    return {
        "base_model": str(model), "datasets": [{"path": str(data), "type": "alpaca"}],
        "sequence_len": SEQ_LEN, "micro_batch_size": MICRO_BATCH, "num_epochs": 1, "learning_rate": 1e-4,
        "lr_scheduler": "constant", "bf16": False, "logging_steps": 10, "seed": 0,
        "dataset_prepared_path": str(root / "prepared"),
    }


def _config(base: dict[str, Any], root: Path, packed: bool):  # type: ignore[no-untyped-def]
    from lathe.config import validate
    from lathe.plugins import Plugins

    data = dict(base)
    data.update(sample_packing=packed, output_dir=str(root / f"out-{packed}"), overwrite_output_dir=True,
                training_args_extra={"save_strategy": "no", "disable_tqdm": True})
    return validate(data, Plugins(), source="<bench>")


def run_lathe(base: dict[str, Any], root: Path, packed: bool) -> dict[str, float]:
    from lathe.plugins import Plugins
    from lathe.train.run import train

    cfg = _config(base, root, packed)
    start = time.perf_counter()
    result = train(cfg, Plugins())
    return {"seconds": result.metrics["train_runtime"], "wall": time.perf_counter() - start}


def run_plain(base: dict[str, Any], root: Path) -> dict[str, float]:
    """The plain loop: transformers Trainer, pad-to-longest collator, the same rows."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    from lathe.data.prepare import prepare_datasets
    from lathe.models.tokenizer import load_tokenizer
    from lathe.plugins import Plugins

    cfg = _config(base, root, packed=False)
    tok = load_tokenizer(cfg, Plugins())
    rows = prepare_datasets(cfg, tok, Plugins()).train.select_columns(["input_ids", "labels"])
    model = AutoModelForCausalLM.from_pretrained(base["base_model"], dtype=torch.float32)
    args = TrainingArguments(output_dir=str(root / "plain"), per_device_train_batch_size=MICRO_BATCH,
                             num_train_epochs=1, learning_rate=1e-4, lr_scheduler_type="constant",
                             logging_steps=10, save_strategy="no", report_to="none", disable_tqdm=True, seed=0,
                             data_seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=rows,
                      data_collator=DataCollatorForSeq2Seq(tok, padding="longest"))
    start = time.perf_counter()
    metrics = trainer.train().metrics
    return {"seconds": metrics["train_runtime"], "wall": time.perf_counter() - start}


def child(variant: str, root: Path) -> None:
    import torch

    torch.set_num_threads(1)
    base = json.loads((root / "base.json").read_text())
    out = run_plain(base, root) if variant == "plain" else run_lathe(base, root, packed=variant == "lathe-packed")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def real_tokens(root: Path, base: dict[str, Any]) -> int:
    from lathe.data.prepare import prepare_datasets
    from lathe.models.tokenizer import load_tokenizer
    from lathe.plugins import Plugins

    cfg = _config(base, root, packed=False)
    tok = load_tokenizer(cfg, Plugins())
    return sum(len(ids) for ids in prepare_datasets(cfg, tok, Plugins()).train["input_ids"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", default=None)
    parser.add_argument("--root", default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.root))
        return
    root = Path(tempfile.mkdtemp(prefix="lathe-bench-"))
    base = write_workspace(root, args.rows)
    (root / "base.json").write_text(json.dumps(base))
    tokens = real_tokens(root, base)
    results: dict[str, dict[str, float]] = {}
    for _ in range(args.repeats):
        for variant in ("plain", "lathe", "lathe-packed"):
            proc = subprocess.run([sys.executable, __file__, "--child", variant, "--root", str(root)],
                                  capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                                                                        "PATH": "/usr/bin:/bin"})
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{variant} failed:\n{proc.stderr[-3000:]}")
            got = json.loads(line[7:])
            best = results.get(variant)
            if best is None or got["seconds"] < best["seconds"]:
                results[variant] = got
    print(f"{args.rows} rows, {tokens} real tokens, micro_batch_size {MICRO_BATCH}, sequence_len {SEQ_LEN}, 1 epoch")
    print(f"{'variant':<14}{'tokens/s':>12}{'peak RSS MB':>14}{'vs plain':>10}")
    plain_tps = tokens / results["plain"]["seconds"]
    for variant, r in results.items():
        tps = tokens / r["seconds"]
        print(f"{variant:<14}{tps:>12.0f}{r['peak_rss_mb']:>14.0f}{tps / plain_tps:>9.2f}x")
    print(f"targets: lathe ≥ 1.0x (got {tokens / results['lathe']['seconds'] / plain_tps:.2f}x), "
          f"lathe-packed ≥ 1.5x (got {tokens / results['lathe-packed']['seconds'] / plain_tps:.2f}x)")


if __name__ == "__main__":
    main()
