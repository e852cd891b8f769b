"""Helpers for reliability tests: a tiny model on disk, config writing, and running `lathe`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lathe.testing import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


class Workspace:
    """A folder holding one run: its config, data files and outputs."""

    def __init__(self, root: Path, model_dir: Path):
        self.root = root
        self.model_dir = model_dir

    def config(self, **overrides: Any) -> Path:
        from lathe.testing import alpaca_rows, write_jsonl

        data = self.root / "data.jsonl"
        if not data.exists():
            write_jsonl(alpaca_rows(24), data)
        cfg: dict[str, Any] = {
            "base_model": str(self.model_dir),
            "datasets": [{"path": str(data), "type": "alpaca"}],
            "sequence_len": 128,
            "micro_batch_size": 4,
            "max_steps": 3,
            "learning_rate": 1e-3,
            "bf16": False,
            "output_dir": str(self.root / "out"),
            "dataset_prepared_path": str(self.root / "prepared"),
            "save_steps": 1,
        }
        cfg.update(overrides)
        path = self.root / "cfg.yaml"
        path.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if v is not None}))
        return path

    def lathe(self, *args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
        return subprocess.run([sys.executable, "-m", "lathe", *args], capture_output=True, text=True,
                              env=full_env, cwd=self.root, timeout=timeout)


@pytest.fixture
def ws(tmp_path: Path, model_dir: Path) -> Workspace:
    return Workspace(tmp_path, model_dir)


def install_test_plugin(site: Path, name: str, code: str) -> Path:
    """Install a one-module plugin `name` into ``site`` (dist-info with a lathe.plugins entry point)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"lathe_test_{name}.py").write_text(code)
    info = site / f"lathe_test_{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: lathe-test-{name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[lathe.plugins]\n{name} = lathe_test_{name}\n")
    return site


def assert_clean_failure(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Non-zero exit, no traceback, and every expected fragment in the message."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"


KILLER = '''
import os
import signal

from lathe.hookspecs import hookimpl


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


@hookimpl
def lathe_callbacks(cfg):
    from transformers import TrainerCallback

    step = int(os.environ.get("LATHE_TEST_KILL_AFTER_SAVE", "0"))

    class KillAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                _die()

    return [KillAfterSave()]


@hookimpl
def lathe_post_trainer_create(cfg, trainer):
    step = int(os.environ.get("LATHE_TEST_KILL_DURING_SAVE", "0"))
    original = trainer._save_optimizer_and_scheduler

    def save_then_die(output_dir):
        if trainer.state.global_step == step:
            _die()  # the model weights of this checkpoint are written, the rest is not
        return original(output_dir)

    trainer._save_optimizer_and_scheduler = save_then_die

    if os.environ.get("LATHE_TEST_KILL_IN_REWRITE"):
        import pathlib

        real_rename = pathlib.Path.rename

        def rename_then_die(self, target):
            moved = real_rename(self, target)
            if pathlib.Path(target).name.startswith(".replaced-"):
                _die()  # the old copy of the step is moved aside, the new one not yet published
            return moved

        pathlib.Path.rename = rename_then_die
'''


@pytest.fixture
def killer_path(tmp_path: Path) -> Path:
    """A folder (put it on PYTHONPATH) holding the installed test plugin `killer`."""
    return install_test_plugin(tmp_path / "killer-site", "killer", KILLER)


FAULTS = '''
import errno
import os
import signal

from lathe.hookspecs import hookimpl


@hookimpl
def lathe_post_tokenizer_load(cfg, tokenizer):
    mode = os.environ.get("LATHE_TEST_SAVE_FAULT")
    if not mode:
        return
    import datasets

    original = datasets.Dataset.save_to_disk

    def faulty(self, path, *args, **kwargs):
        if mode == "enospc":
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "partial.arrow"), "wb") as f:
                f.write(b"x" * 1024)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        original(self, path, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # written, not yet published

    datasets.Dataset.save_to_disk = faulty
'''


@pytest.fixture
def faults_path(tmp_path: Path) -> Path:
    """A folder holding the installed test plugin `faults`, which breaks the prepared-data write."""
    return install_test_plugin(tmp_path / "faults-site", "faults", FAULTS)


SIGNALLER = '''
import os
import signal

from lathe.hookspecs import hookimpl


@hookimpl
def lathe_callbacks(cfg):
    from transformers import TrainerCallback

    step = int(os.environ.get("LATHE_TEST_SIGNAL_AT", "0"))
    sig = getattr(signal, os.environ.get("LATHE_TEST_SIGNAL", "SIGINT"))

    class SignalAt(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step + 1 == step:
                os.kill(os.getpid(), sig)

    return [SignalAt()]
'''


@pytest.fixture
def signaller_path(tmp_path: Path) -> Path:
    """A folder holding the installed test plugin `signaller`, which signals its own process."""
    return install_test_plugin(tmp_path / "signaller-site", "signaller", SIGNALLER)
