"""``deepspeed:``: a shipped ZeRO config by name, a JSON file, or a mapping, handed to
transformers' DeepSpeed integration (which fills the ``"auto"`` values from the training
arguments and lets accelerate build the engine).

The shipped configs live in ``lathe/deepspeed_configs/`` (package data), one file per name.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.config import Config

INSTALL = "pip install 'lathe[deepspeed]'"


def shipped_names() -> list[str]:
    """Names of the DeepSpeed configs lathe ships (``deepspeed: zero3``)."""
    folder = resources.files("lathe") / "deepspeed_configs"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def find_deepspeed_config(value: str) -> Path:
    """The JSON file ``deepspeed: <value>`` means: a shipped name (with or without ``.json``,
    or Axolotl's ``deepspeed_configs/<name>.json``) when no such file exists, else the path."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    name = Path(value).name.removesuffix(".json")
    if name in shipped_names() and (value == name or value in (f"{name}.json", f"deepspeed_configs/{name}.json")):
        return Path(str(resources.files("lathe") / "deepspeed_configs" / f"{name}.json"))
    raise ValueError(
        f"no file {value!r}, and not the name of a shipped DeepSpeed config ({', '.join(shipped_names())})"
    )


def deepspeed_config(cfg: Config) -> dict[str, Any] | None:
    """The DeepSpeed config dict this run uses (``deepcompile`` applied), or None."""
    if not cfg.deepspeed:
        return None
    if isinstance(cfg.deepspeed, dict):
        config = json.loads(json.dumps(cfg.deepspeed))  # a deep copy the run may change
    else:
        path = find_deepspeed_config(cfg.deepspeed)
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise LatheError(f"deepspeed: {path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise LatheError(f"deepspeed: the config must be a JSON object, got {type(config).__name__}")
    if cfg.deepcompile and "compile" not in config:
        config["compile"] = {"deepcompile": True}
    return config


def require_deepspeed() -> None:
    """DeepSpeed is installed and will pick an accelerator that exists on this machine."""
    if importlib.util.find_spec("deepspeed") is None:
        raise LatheError(f"deepspeed: DeepSpeed is not installed: {INSTALL}")
    import torch

    if not torch.cuda.is_available():
        # DeepSpeed guesses its accelerator from what is importable; name the CPU one explicitly
        # (ZeRO then communicates over gloo), unless the user chose one.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def _leave_process_group() -> None:
    """Destroy the process group before the interpreter exits: a rank that ends while its gloo
    group is still alive can abort ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deepspeed_process_setup(timeout: timedelta | None = None) -> dict[str, Any]:
    """Join (or make) the process group DeepSpeed runs in; returns training-argument overrides.

    - Without a launcher (one process), the rendezvous variables a launcher would set are
      set for a world of one, as DeepSpeed needs a process group even then.
    - accelerate's state is built here for DeepSpeed and the Trainer is told to use it
      (``use_configured_state``): without CUDA accelerate finds no backend for DeepSpeed (it
      knows gloo only for its own CPU mode, which excludes DeepSpeed), so gloo is named.
    """
    import torch
    from accelerate import PartialState

    require_deepspeed()
    if "LOCAL_RANK" not in os.environ:
        for var, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_WORLD_SIZE", "1"),
                           ("MASTER_ADDR", "127.0.0.1")):
            os.environ.setdefault(var, value)
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    kwargs: dict[str, Any] = {} if torch.cuda.is_available() else {"backend": "gloo"}
    if timeout is not None:
        kwargs["timeout"] = timeout
    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"  # read once, by this constructor
    try:
        PartialState(**kwargs)
    finally:
        del os.environ["ACCELERATE_USE_DEEPSPEED"]
    atexit.register(_leave_process_group)
    return {"accelerator_config": {"use_configured_state": True}, "use_cpu": False}


def zero_stage(config: dict[str, Any] | None) -> int:
    return int((config or {}).get("zero_optimization", {}).get("stage", 0))
