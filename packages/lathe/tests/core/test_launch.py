"""``--launcher`` / ``--num-processes``: the command lathe re-executes under, and what is refused
before anything starts (the multi-process runs themselves are in tests/distributed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lathe.distributed.launch import launch_command
from lathe.errors import LatheError


def test_launch_commands() -> None:
    lathe_args = ["train", "c.yaml", "--set", "seed=1"]
    assert launch_command("torchrun", 2, [], lathe_args) == [
        sys.executable, "-m", "lathe.distributed.torchrun", "--nproc_per_node", "2", "-m", "lathe", *lathe_args]
    assert launch_command("torchrun", None, ["--nnodes", "2", "--nproc_per_node=8"], lathe_args)[3:6] == [
        "--nnodes", "2", "--nproc_per_node=8"]
    # several processes: --multi_gpu (accelerate launch alone would start one; it runs on CPU too)
    assert launch_command("accelerate", 2, ["--main_process_port", "0"], lathe_args) == [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
        "--main_process_port", "0", "-m", "lathe", *lathe_args]
    assert "--multi_gpu" in launch_command("accelerate", None, ["--num_processes", "4"], lathe_args)
    assert "--multi_gpu" not in launch_command("accelerate", None, ["--num_processes=1"], lathe_args)
    assert "--multi_gpu" not in launch_command("accelerate", 2, ["--use_fsdp"], lathe_args)
    assert "--multi_gpu" not in launch_command("accelerate", None, ["--config_file", "acc.yaml"], lathe_args)
    assert launch_command("python", None, [], lathe_args) == [sys.executable, "-m", "lathe", *lathe_args]


@pytest.mark.parametrize(("launcher", "n", "args", "message"), [
    ("python", 2, [], "runs one process"),
    ("python", None, ["--x"], "takes no launcher arguments"),
    ("torchrun", 2, ["--nproc-per-node", "2"], "both set the number of processes"),
    ("accelerate", 2, ["--num_processes=4"], "both set the number of processes"),
])
def test_contradicting_launch_options_are_errors(launcher: str, n: int | None, args: list[str], message: str) -> None:
    with pytest.raises(LatheError, match=message):
        launch_command(launcher, n, args, ["train", "c.yaml"])


def _cfg(tmp_path: Path, extra: str) -> str:
    (tmp_path / "d.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    path = tmp_path / "cfg.yaml"
    path.write_text(f"base_model: m\ndatasets:\n  - path: {tmp_path / 'd.jsonl'}\n    type: alpaca\n{extra}")
    return str(path)


def test_refused_before_launching(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lathe.cli.main import main

    cfg = _cfg(tmp_path, "dp_shard_size: 2\ndp_replicate_size: 2\nfsdp_config: {}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", cfg, "--num-processes", "3"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "= 4, but the run has 3 processes" in err and "launching" not in err
    with pytest.raises(SystemExit):
        main(["preprocess", _cfg(tmp_path, ""), "--", "--nproc_per_node", "2"])
    assert "go to a launcher: add --launcher torchrun" in capsys.readouterr().err
