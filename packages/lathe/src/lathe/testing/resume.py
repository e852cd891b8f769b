"""Resumed equals uninterrupted, with a plugin enabled: the conformance suite's check that
the plugin's state survives a SIGKILL (see :mod:`lathe.train.plugin_state`).

Three short ``lathe train`` processes on a tiny model: an uninterrupted one; one that a test
plugin kills with SIGKILL right after the checkpoint of step ``kill_at``; and a restart of
it with ``auto_resume_from_checkpoints``. The final weights and every logged loss of the
resumed run must equal the uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

KILLER_NAME = "lathe_conformance_killer"
KILLER = '''
import os
import signal

from lathe.hookspecs import hookimpl


@hookimpl
def lathe_callbacks(cfg):
    from transformers import TrainerCallback

    step = int(os.environ.get("LATHE_CONFORMANCE_KILL_AT", "0"))

    class KillAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                os.kill(os.getpid(), signal.SIGKILL)

    return [KillAfterSave()]
'''


def _install_killer(site: Path) -> Path:
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{KILLER_NAME}.py").write_text(KILLER)
    info = site / f"{KILLER_NAME}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {KILLER_NAME}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[lathe.plugins]\n{KILLER_NAME} = {KILLER_NAME}\n")
    return site


def start_lathe_train(cfg: dict[str, Any], path: Path, env: dict[str, str] | None = None,
                      launch: Sequence[str] = ()) -> subprocess.Popen[str]:
    """Start ``lathe train`` on ``cfg`` (written to ``path``) in a subprocess; ``launch`` are more
    arguments of ``lathe train``, e.g. :func:`launched` for several processes."""
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.Popen([sys.executable, "-m", "lathe", "train", str(path), *launch], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})})


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a :func:`start_lathe_train` process (10 minutes at most) and return what it printed."""
    try:
        out, err = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def lathe_train(cfg: dict[str, Any], path: Path, env: dict[str, str] | None = None,
                launch: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """``lathe train`` on ``cfg`` (written to ``path``) in a subprocess, waited for."""
    return finished(start_lathe_train(cfg, path, env, launch))


def launched(nproc: int) -> list[str]:
    """``lathe train`` arguments for ``nproc`` local processes under torchrun (on a free port)."""
    return ["--launcher", "torchrun", "--num-processes", str(nproc), "--", "--standalone"]


def final_weights(out: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    files = sorted(out.glob("*.safetensors"))
    assert files, f"no weights in {out}"
    return {f"{f.name}:{k}": v for f in files for k, v in load_file(f).items()}


def checkpoint_losses(out: Path) -> list[tuple[int, float]]:
    last = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    return [(h["step"], h["loss"]) for h in history if "loss" in h]


def check_resume_equals_uninterrupted(tmp_path: Path, cfg: dict[str, Any], max_steps: int = 4, kill_at: int = 2,
                                      launch: Sequence[str] = ()) -> None:
    """Assert that ``cfg`` (a complete config dict) killed after step ``kill_at`` and resumed
    ends with the weights and losses of an uninterrupted run (``tmp_path/uninterrupted``).
    With ``launch`` (several processes) every rank is killed, and the launcher reports the SIGKILL."""
    import torch

    site = _install_killer(tmp_path / "killer-site")
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    cfg = {**cfg, "max_steps": max_steps, "save_steps": kill_at, "logging_steps": 1,
           "plugins": sorted({*cfg.get("plugins", []), KILLER_NAME})}
    cfg.pop("saves_per_epoch", None)

    # The uninterrupted and the interrupted run are independent: one process each runs side by side
    # (launched runs already have a process per core, and run one after the other).
    reference = {**cfg, "output_dir": str(tmp_path / "uninterrupted")}
    uninterrupted = start_lathe_train(reference, tmp_path / "uninterrupted.yaml", {"PYTHONPATH": path}, launch)
    done = finished(uninterrupted) if launch else None
    interrupted = {**cfg, "output_dir": str(tmp_path / "interrupted"), "auto_resume_from_checkpoints": True}
    env = {"PYTHONPATH": path, "LATHE_CONFORMANCE_KILL_AT": str(kill_at)}
    killed = finished(start_lathe_train(interrupted, tmp_path / "interrupted.yaml", env, launch))
    done = done or finished(uninterrupted)
    assert done.returncode == 0, done.stderr[-3000:]
    was_killed = ("SIGKILL" in killed.stderr and killed.returncode != 0) if launch else killed.returncode == -signal.SIGKILL
    assert was_killed, f"the run was not killed at step {kill_at}: {killed.stderr[-3000:]}"
    resumed = lathe_train(interrupted, tmp_path / "interrupted.yaml", {"PYTHONPATH": path}, launch)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"checkpoint-{kill_at}" in resumed.stderr, "the second run did not resume"

    out_ref, out = Path(reference["output_dir"]), Path(interrupted["output_dir"])
    ref, got = final_weights(out_ref), final_weights(out)
    assert ref.keys() == got.keys()
    differ = [name for name in ref if not torch.allclose(got[name].float(), ref[name].float(), rtol=0, atol=1e-6)]
    assert not differ, f"resumed weights differ from the uninterrupted run's: {differ[:5]}"
    ref_losses, got_losses = checkpoint_losses(out_ref), checkpoint_losses(out)
    assert [s for s, _ in got_losses] == [s for s, _ in ref_losses] == list(range(1, max_steps + 1))
    for (step, a), (_, b) in zip(ref_losses, got_losses, strict=True):
        assert abs(a - b) < 1e-6, f"step {step}: loss {b} resumed, {a} uninterrupted"
