"""bench/gpu.py --smoke runs every GPU check on tiny shapes wherever the tests run, so the GPU
bench cannot rot between GPU sessions; each check writes its JSON with the run's facts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_smoke_writes_one_json_per_check(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "bench" / "gpu.py"), "--smoke", "--skip", "G1", "--out", str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                                                                        "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert written == ["gpu-G2-smoke.json", "gpu-G3-smoke.json", "gpu-G4-smoke.json"]  # G1 skipped by name
    records = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    for record in records.values():
        assert {"date", "device", "versions", "command", "results"} <= record.keys()
        assert record["versions"]["lathe"] and "--smoke" in record["command"]
    assert all(r["max_abs_diff"] < 1e-4 for r in records["gpu-G2-smoke"]["results"].values())
    assert records["gpu-G4-smoke"]["results"]["loss_diff_last_step"] < 1e-4
    g3 = records["gpu-G3-smoke"]["results"]
    import torch

    assert g3["status"] == ("ran" if torch.cuda.is_available() else "not run")


def test_unknown_check_name_is_refused() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--only", "G9"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown check 'G9'" in result.stderr
