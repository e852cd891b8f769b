"""lathe beside Axolotl on one Axolotl-keyed YAML: startup, cold preprocess, a packed run, RSS, size.

Axolotl lives in its own venv (CPU torch first, then ``axolotl==0.19.0``), created on first use
under ``--axolotl-venv``; lathe runs from the interpreter running this script. Both tools read
the same YAML and data (tiny Llama, the test tokenizer, 2k alpaca rows) and each command runs in a
fresh process, so wall times include imports, as a user sees them.

    python bench/vs_axolotl.py [--rows 2000] [--steps 20] [--repeats 2] [--axolotl-venv .bench/axolotl]
    python bench/vs_axolotl.py --smoke        # tiny sizes, lathe only: checks the script runs

Targets (issue 19): preprocess ≥ 5×, train wall ≥ 2.5×, train loop ≥ 1.3×, peak RSS ≤ 0.7×.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

AXOLOTL = "axolotl==0.19.0"
TORCH = "torch==2.13.0"
ROOT = Path(__file__).resolve().parent.parent
LOGGING_STEPS = 5
RUNTIME = re.compile(r"'?train_runtime'?\s*[:=]\s*'?([0-9.]+)")


def axolotl_venv(path: Path) -> Path:
    """The venv's ``bin`` folder, created and filled on first use (several minutes)."""
    bin_dir = path / "bin"
    if not (bin_dir / "axolotl").exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, TORCH], check=True)
        pin = path / "torch-pin.txt"
        pin.write_text(TORCH + "\n")
        subprocess.run([*pip, AXOLOTL, "-c", str(pin)], check=True)
    return bin_dir


def write_fixture(root: Path, rows: int, steps: int, seq_len: int) -> Path:
    """Tiny Llama + tokenizer, alpaca rows, and one YAML with Axolotl's keys."""
    import torch
    from transformers import AutoModelForCausalLM

    from lathe.testing import tiny_tokenizer, write_jsonl
    from lathe.testing.data import _WORDS
    from lathe.testing.models import tiny_model_config

    rng = random.Random(0)
    model = root / "model"
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    config = tiny_model_config("llama", vocab_size=len(tok), hidden_size=256, intermediate_size=1024,
                               num_attention_heads=4, num_key_value_heads=4)
    AutoModelForCausalLM.from_config(config).save_pretrained(model)
    tok.save_pretrained(model)

    def words(lo: int, hi: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(lo, hi)))

    data = root / "alpaca.jsonl"
    write_jsonl(({"instruction": words(4, 16), "input": words(0, 12), "output": words(8, 120)}
                 for _ in range(rows)), data)
    cfg = {
        "base_model": str(model), "tokenizer_type": "AutoTokenizer",
        "datasets": [{"path": str(data), "type": "alpaca", "ds_type": "json"}],
        "dataset_prepared_path": str(root / "prepared"), "val_set_size": 0.0,
        "sequence_len": seq_len, "sample_packing": True, "pad_to_sequence_len": True,
        "micro_batch_size": 4, "gradient_accumulation_steps": 1, "max_steps": steps,
        "learning_rate": 1e-4, "optimizer": "adamw_torch", "lr_scheduler": "constant",
        "bf16": False, "fp16": False, "tf32": False, "logging_steps": LOGGING_STEPS, "seed": 0,
        "save_strategy": "no", "output_dir": str(root / "out"), "special_tokens": {},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a live process and all its live descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += [child for child, (parent, _) in stats.items() if parent == pid]
    return total


def timed(cmd: list[str], cwd: Path, bin_dir: Path | None, steps_per_log: int) -> dict[str, Any]:
    """Wall and CPU seconds, peak RSS (MiB) of one command in a fresh process, and its loop cost.

    CPU seconds (user + system, the command and its workers) stay comparable when the machine is
    busy with other work; wall seconds are what a user waits on an idle machine. The loop's CPU
    seconds per step are read between the first and the last loss log line (both tools print the
    Trainer's ``{'loss': …}`` every ``logging_steps``), so imports, loading and saving are left out.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "WANDB_DISABLED": "true", "WANDB_MODE": "disabled",
           "AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1", "CUDA_VISIBLE_DEVICES": ""}
    if bin_dir is not None:  # Axolotl re-executes itself through `accelerate launch`, found on PATH
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    probe = ("import resource, subprocess, sys, time\n"
             "t = time.perf_counter(); p = subprocess.run(sys.argv[1:])\n"
             "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "print('BENCH', p.returncode, time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss)")
    proc = subprocess.Popen([sys.executable, "-c", probe, *cmd], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out, marks = bytearray(), []
    while chunk := os.read(proc.stdout.fileno(), 1 << 16):
        logs = out.count(b"{'loss'")
        out += chunk
        if out.count(b"{'loss'") > logs:
            marks.append(tree_cpu_seconds(proc.pid))
    proc.wait()
    output = out.decode(errors="replace")
    line = next(ln for ln in output.splitlines()[::-1] if ln.startswith("BENCH "))
    _, code, wall, cpu, rss_kb = line.split()
    if code != "0":
        sys.exit(f"{' '.join(cmd)} failed ({code}):\n{output[-4000:]}")
    loop = RUNTIME.findall(output)
    step_cpu = (marks[-1] - marks[-2]) / steps_per_log if len(marks) >= 2 else None
    return {"wall": float(wall), "cpu": float(cpu), "rss_mb": int(rss_kb) / 1024,
            "loop": float(loop[-1]) if loop else None, "step_cpu": step_cpu}


def site_packages_mb(python: str) -> float:
    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    total = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file() and not f.is_symlink())
    return total / 2**20


def measure(tool: str, bin_dir: Path | None, cfg: Path, repeats: int) -> dict[str, dict[str, Any]]:
    """Best of ``repeats`` for each command; preprocess is always cold (its cache removed first)."""
    base = [str(bin_dir / "axolotl")] if bin_dir else [sys.executable, "-m", "lathe"]
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeats):
        for name, args in (("--help", ["--help"]), ("preprocess", ["preprocess", str(cfg)]),
                           ("train", ["train", str(cfg)])):
            if name == "preprocess":
                shutil.rmtree(cfg.parent / "prepared", ignore_errors=True)
            if name == "train":
                shutil.rmtree(cfg.parent / "out", ignore_errors=True)
            got = timed(base + args, cfg.parent, bin_dir, LOGGING_STEPS)
            if name not in best or got["wall"] < best[name]["wall"]:
                best[name] = got
            print(f"  {tool:<8}{name:<12}{got['wall']:8.2f} s wall {got['cpu']:8.2f} s cpu  loop {got['loop']}  "
                  f"step cpu {got['step_cpu']}  "
                  f"rss {got['rss_mb']:.0f} MiB",
                  flush=True)
    return best


def table(lathe: dict[str, dict[str, Any]], axolotl: dict[str, dict[str, Any]], sizes: tuple[float, float]) -> str:
    rows = [("--help (wall s)", axolotl["--help"]["wall"], lathe["--help"]["wall"]),
            ("--help (CPU s)", axolotl["--help"]["cpu"], lathe["--help"]["cpu"]),
            ("preprocess, cold (wall s)", axolotl["preprocess"]["wall"], lathe["preprocess"]["wall"]),
            ("preprocess, cold (CPU s)", axolotl["preprocess"]["cpu"], lathe["preprocess"]["cpu"]),
            ("train, packed (wall s)", axolotl["train"]["wall"], lathe["train"]["wall"]),
            ("train, packed (CPU s)", axolotl["train"]["cpu"], lathe["train"]["cpu"]),
            ("train loop (train_runtime s)", axolotl["train"]["loop"], lathe["train"]["loop"]),
            ("train loop (CPU s per step)", axolotl["train"]["step_cpu"], lathe["train"]["step_cpu"]),
            ("train peak RSS (MiB)", axolotl["train"]["rss_mb"], lathe["train"]["rss_mb"]),
            ("environment size (MiB)", sizes[1], sizes[0])]
    lines = ["| measure | Axolotl | lathe | Axolotl ÷ lathe |", "|---|---|---|---|"]
    for name, ax, la in rows:
        lines.append(f"| {name} | {ax:.2f} | {la:.2f} | {ax / la:.2f}× |" if ax and la else f"| {name} | {ax} | {la} | n/a |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--axolotl-venv", type=Path, default=ROOT / ".bench" / "axolotl")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, lathe only")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.steps, args.repeats, args.seq_len = 64, 2, 1, 256
    root = Path(tempfile.mkdtemp(prefix="lathe-vs-axolotl-"))
    cfg = write_fixture(root, args.rows, args.steps, args.seq_len)
    print(f"fixture: {root} ({args.rows} alpaca rows, {args.steps} packed steps, sequence_len {args.seq_len}, "
          "micro_batch_size 4, 1 thread)")
    lathe = measure("lathe", None, cfg, args.repeats)
    if args.smoke:
        print("--smoke: Axolotl not run")
        return
    bin_dir = axolotl_venv(args.axolotl_venv)
    axolotl = measure("axolotl", bin_dir, cfg, args.repeats)
    sizes = (site_packages_mb(sys.executable), site_packages_mb(str(bin_dir / "python")))
    print()
    print(table(lathe, axolotl, sizes))
    print("\ntargets: preprocess ≥ 5×, train wall ≥ 2.5×, train loop ≥ 1.3×, RSS ≤ 0.7× (lathe ÷ Axolotl, "
          "i.e. Axolotl ÷ lathe ≥ 1.43)")


if __name__ == "__main__":
    main()
