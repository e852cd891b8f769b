"""``--launcher accelerate|torchrun|python``: run this lathe command again under the launcher.

lathe only builds the command line; the launcher starts the processes (and, across nodes, does
the rendezvous with its own flags: ``-- --nnodes 2 --node_rank 0 --rdzv_endpoint host:29500``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from lathe.errors import LatheError

LAUNCHERS = ("accelerate", "torchrun", "python")

# the flag each launcher takes for the number of processes on this node
_NPROC_FLAGS = {
    "torchrun": ("--nproc_per_node", "--nproc-per-node"),
    "accelerate": ("--num_processes", "--num-processes"),
}


def launch_command(
    launcher: str, num_processes: int | None, launcher_args: Sequence[str], lathe_args: Sequence[str]
) -> list[str]:
    """The full command line: the launcher, its arguments, then ``python -m lathe <lathe_args>``."""
    if launcher not in LAUNCHERS:
        raise LatheError(f"--launcher: {launcher!r} is not one of {', '.join(LAUNCHERS)}")
    if launcher == "python":
        if launcher_args:
            raise LatheError(f"--launcher python takes no launcher arguments (got {' '.join(launcher_args)})")
        if num_processes not in (None, 1):
            raise LatheError("--launcher python runs one process; use --launcher torchrun or accelerate for more")
        return [sys.executable, "-m", "lathe", *lathe_args]
    given = [a for a in launcher_args if a.split("=")[0] in _NPROC_FLAGS[launcher]]
    if given and num_processes is not None:
        raise LatheError(f"--num-processes and the launcher argument {given[0]} both set the number of processes")
    nproc = ["--nproc_per_node" if launcher == "torchrun" else "--num_processes", str(num_processes)] \
        if num_processes is not None else []
    if launcher == "torchrun":
        return [sys.executable, "-m", "lathe.distributed.torchrun", *nproc, *launcher_args, "-m", "lathe", *lathe_args]
    return [sys.executable, "-m", "accelerate.commands.launch", *nproc, *_accelerate_mode(num_processes, launcher_args),
            *launcher_args, "-m", "lathe", *lathe_args]


_ACCELERATE_MODES = ("--multi_gpu", "--use_fsdp", "--use_deepspeed", "--use_megatron_lm", "--cpu", "--tpu",
                     "--config_file", "--config-file")


def _accelerate_mode(num_processes: int | None, launcher_args: Sequence[str]) -> list[str]:
    """``--multi_gpu`` when several processes are asked for and no mode or config file is given:
    without it (and without a config file) ``accelerate launch`` starts one process, whatever
    ``--num_processes`` says. Its multi-process launcher also runs on a CPU-only machine (gloo)."""
    if any(a.split("=")[0] in _ACCELERATE_MODES for a in launcher_args):
        return []
    count = num_processes
    for i, arg in enumerate(launcher_args):
        name, _, value = arg.partition("=")
        if name in _NPROC_FLAGS["accelerate"]:
            value = value or (launcher_args[i + 1] if i + 1 < len(launcher_args) else "1")
            count = int(value) if value.isdigit() else count
    return ["--multi_gpu"] if count is not None and count > 1 else []


def relaunch(launcher: str, num_processes: int | None, launcher_args: Sequence[str], lathe_args: Sequence[str]) -> int:
    """Run the command under the launcher and return its exit code; a failure names it."""
    command = launch_command(launcher, num_processes, launcher_args, lathe_args)
    print(f"lathe: launching: {' '.join(command)}", file=sys.stderr, flush=True)
    env = {**os.environ, "LATHE_LAUNCHER": launcher}
    try:
        code = subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130
    if code != 0:
        print(f"lathe: the {launcher} run failed (exit code {code}); each failing rank's error is above",
              file=sys.stderr, flush=True)
    return code


def set_flags(overrides: Sequence[str]) -> list[str]:
    """``--set KEY=VALUE`` arguments for the relaunched command."""
    return [arg for value in overrides for arg in ("--set", value)]
