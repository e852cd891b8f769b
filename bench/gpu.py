"""The GPU checks G1–G4 of GPU_CHECKS.md in one command; one JSON per check.

    python bench/gpu.py                         # G1–G4 on the GPU, results in bench/results/gpu-G<n>.json
    python bench/gpu.py --only G3,G4            # some checks ...
    python bench/gpu.py --skip G1               # ... or all but some
    python bench/gpu.py --smoke --out /tmp/g    # tiny shapes on the CPU in seconds (CI runs this)

Each JSON holds the check, date, device, package versions, the exact command and the
figures. A check that cannot run here (Liger without CUDA) records why instead.

G1 full fine-tune (Llama-3.2-1B shape, random weights, bf16, seq 2048, packed, sdpa):
   tokens/s, MFU = 6·N·tokens/s ÷ 989e12 (H100 SXM bf16 dense; attention FLOPs not
   added), peak GiB; also packing off and torch_compile on.
G2 packed loss equals unpacked loss (sdpa, flex_attention, flash_attention_2 when
   installed): max abs diff of per-sequence mean loss.
G3 liger on/off (rope, rms_norm, glu, fused linear CE), same config, 20 steps:
   loss diff at the last step, tokens/s ratio, peak memory ratio.
G4 cut_cross_entropy on/off: the same three figures, and the loss-only peak memory at
   vocab 128256 (standard vs cce).

The GPU image lacks datasets, liger-kernel and cut-cross-entropy, and has no network:
bring wheels in a git-ignored folder that travels with the tree (`.whl/`, in .gitignore):

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl datasets liger-kernel==0.8.5 cut-cross-entropy==25.1.1 dill multiprocess xxhash
    python3 -m pip wheel --no-deps -w .whl packages/lathe packages/lathe-kd \\
        packages/lathe-liger packages/lathe-cut-cross-entropy

and on the GPU machine, before this script:
`pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

CHECKS = ("G1", "G2", "G3", "G4")
PEAK_FLOPS = 989e12
ONE_B = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
             num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=True, max_position_embeddings=4096)


def environment() -> dict[str, Any]:
    versions = {}
    for dist in ("torch", "transformers", "peft", "accelerate", "datasets", "triton", "liger-kernel",
                 "cut-cross-entropy", "flash-attn", "lathe", "lathe-liger", "lathe-cut-cross-entropy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    cuda = torch.cuda.is_available()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "cuda": torch.version.cuda if cuda else None,
        "python": platform.python_version(),
        "versions": versions,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


class Bench:
    def __init__(self, smoke: bool, work: Path) -> None:
        self.smoke, self.work = smoke, work
        self.cuda = torch.cuda.is_available()
        self.seq = 128 if smoke else 2048
        self.steps = 2 if smoke else 20
        self.model_dir = self._model_dir()
        self.data = self._data()

    def _model_dir(self) -> Path:
        from lathe.testing import tiny_tokenizer
        from lathe.testing.models import tiny_model_config

        path = self.work / "model"
        tok = tiny_tokenizer()
        shape = {"vocab_size": len(tok)} if self.smoke else ONE_B
        config = tiny_model_config("llama", **shape)
        config.pad_token_id, config.eos_token_id, config.bos_token_id = tok.pad_token_id, tok.eos_token_id, tok.bos_token_id
        config.save_pretrained(path)  # config only: random_init_weights builds it on the device
        tok.save_pretrained(path)
        return path

    def _data(self) -> Path:
        from lathe.testing import text_rows, write_jsonl

        return write_jsonl(text_rows(64 if self.smoke else 20000, seed=1), self.work / "data" / "text.jsonl")

    def config(self, tag: str, **overrides: Any) -> dict[str, Any]:
        return {
            "base_model": str(self.model_dir), "random_init_weights": True,
            "datasets": [{"path": str(self.data), "type": "completion"}],
            "sequence_len": self.seq, "sample_packing": True, "micro_batch_size": 2 if self.smoke else 4,
            "gradient_accumulation_steps": 1, "max_steps": self.steps, "learning_rate": 1e-4,
            "lr_scheduler": "constant", "optimizer": "adamw_torch", "bf16": "auto", "logging_steps": 1,
            "attn_implementation": "sdpa", "output_dir": str(self.work / f"out-{tag}"),
            "dataset_prepared_path": str(self.work / "prepared"), "dataset_processes": 1, "seed": 0,
            "save_strategy": "no", **overrides,
        }

    def train(self, tag: str, **overrides: Any) -> dict[str, Any]:
        """Train; tokens/s over the steps after the first two, peak memory, the last loss."""
        from lathe.testing import run_training

        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        result = run_training(self.config(tag, **overrides))
        logs = [h for h in result.trainer.state.log_history if "loss" in h]
        steady = [h["tokens_per_second"] for h in logs[2:]] or [h["tokens_per_second"] for h in logs]
        params = sum(p.numel() for p in result.trainer.model.parameters())
        tps = statistics.mean(steady)
        return {
            "tokens_per_second": round(tps, 1), "mfu": round(6 * params * tps / PEAK_FLOPS, 4),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if self.cuda else None,
            "last_loss": logs[-1]["loss"], "parameters": params, "steps": len(logs),
        }

    def g1(self) -> dict[str, Any]:
        compiled = (
            {"status": "not run", "reason": "--smoke: compiling on CPU takes minutes"}
            if self.smoke else self.train("g1-compile", torch_compile=True)
        )
        return {"packed_sdpa": self.train("g1"), "unpacked": self.train("g1-unpacked", sample_packing=False),
                "torch_compile": compiled}

    def g2(self) -> dict[str, Any]:
        from transformers.utils import is_flash_attn_2_available

        backends = ["sdpa", "flex_attention"] + (["flash_attention_2"] if is_flash_attn_2_available() else [])
        return {b: packed_vs_unpacked(b, self.cuda, self.model_dir) for b in backends}

    def on_off(self, plugin: str, keys: dict[str, Any]) -> dict[str, Any]:
        off = self.train(f"{plugin}-off")
        try:
            on = self.train(f"{plugin}-on", plugins=[plugin], **keys)
        except Exception as exc:  # e.g. Liger's Triton kernels without CUDA: record why
            return {"status": "not run", "reason": str(exc).splitlines()[0], "off": off}
        def ratio(key: str) -> float | None:
            return round(on[key] / off[key], 3) if on[key] and off[key] else None

        return {"status": "ran", "loss_diff_last_step": abs(on["last_loss"] - off["last_loss"]),
                "tokens_per_second_ratio": ratio("tokens_per_second"), "peak_memory_ratio": ratio("peak_gib"),
                "on": on, "off": off}

    def g3(self) -> dict[str, Any]:
        return self.on_off("liger", {"liger_rope": True, "liger_rms_norm": True, "liger_glu_activation": True,
                                     "liger_fused_linear_cross_entropy": True})

    def g4(self) -> dict[str, Any]:
        out = self.on_off("cut_cross_entropy", {})
        out["loss_only_peak"] = loss_only_memory(4096 if self.cuda else 64, 2048 if self.cuda else 32,
                                                 128256 if self.cuda else 4096, self.cuda)
        return out


def packed_vs_unpacked(attn: str, cuda: bool, model_dir: Path) -> dict[str, Any]:
    """Per-sequence mean loss of sequences alone and packed two rows at a time (lathe's collators)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from lathe.data.collate import BoundaryMasking, Collator, FlashVarlen

    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(model_dir)
    if not cuda:
        config.num_hidden_layers = 2
    model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn).to(device).eval()
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(5, min(config.vocab_size, 500), (int(n),), generator=g).tolist() for n in (37, 64, 21, 50)]

    def per_token(batch: dict[str, Any]) -> torch.Tensor:
        inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            logits = model(**inputs).logits.float()
        return torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten().to(device), reduction="none"
        ).view(logits.shape[0], -1)

    alone = [float(per_token({"input_ids": torch.tensor([s]), "labels": torch.tensor([s])}).mean()) for s in seqs]
    collate = BoundaryMasking(Collator(pad_id=0))
    if attn.startswith("flash"):
        collate = FlashVarlen(collate)
    rows = []
    for pair in (seqs[:2], seqs[2:]):
        ids = [t for s in pair for t in s]
        rows.append({"input_ids": ids, "labels": ids, "position_ids": [p for s in pair for p in range(len(s))]})
    losses = per_token(collate(rows))
    packed = []
    for row, pair in enumerate((seqs[:2], seqs[2:])):
        start = 0
        for s in pair:
            packed.append(float(losses[row, start:start + len(s) - 1].mean()))
            start += len(s)
    return {"max_abs_diff": max(abs(a - b) for a, b in zip(alone, packed, strict=True)), "dtype": str(dtype)}


def loss_only_memory(tokens: int, hidden: int, vocab: int, cuda: bool) -> dict[str, Any]:
    """Peak memory of the loss's forward + backward, standard vs CCE (cce on CUDA, torch_compile on CPU)."""
    if not cuda:
        return {"status": "not run", "reason": "needs CUDA (bench/loss_memory.py measures it on CPU)"}
    from cut_cross_entropy import linear_cross_entropy

    out: dict[str, Any] = {"tokens": tokens, "hidden": hidden, "vocab": vocab}
    for name in ("standard", "cce"):
        h = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        w = torch.randn(vocab, hidden, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        y = torch.randint(0, vocab, (tokens,), device="cuda")
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        if name == "standard":
            loss = torch.nn.functional.cross_entropy((h @ w.T).float(), y)
        else:
            loss = linear_cross_entropy(h, w, y)
        loss.backward()
        torch.cuda.synchronize()
        out[f"{name}_gib"] = round((torch.cuda.max_memory_allocated() - base) / 2**30, 3)
        del h, w, y, loss
    out["ratio"] = round(out["cce_gib"] / out["standard_gib"], 4) if out["standard_gib"] else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated checks to run (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated checks to skip")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, any device (CI)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = parser.parse_args(argv)
    chosen = [c for c in (a.only.split(",") if a.only else CHECKS) if c and c not in a.skip.split(",")]
    unknown = [c for c in chosen if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check {unknown[0]!r}; choose from {', '.join(CHECKS)}")
    if not a.smoke and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU here; nothing measured (--smoke runs the checks on tiny shapes)")
        return 0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    with tempfile.TemporaryDirectory() as work:
        bench = Bench(a.smoke, Path(work))
        for check in chosen:
            results = getattr(bench, check.lower())()
            record = {"check": check, "smoke": a.smoke, **env, "results": results}
            path = out / f"gpu-{check}{'-smoke' if a.smoke else ''}.json"
            path.write_text(json.dumps(record, indent=2) + "\n")
            print(f"{check}: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
