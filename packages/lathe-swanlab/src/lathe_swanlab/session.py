"""One SwanLab run per lathe run: start (rank 0), the resolved config, the model upload, finish."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from lathe.errors import Interrupted, LatheError
from lathe_swanlab.config import mode, setting

# Axolotl's mode names → SwanLab 0.10's
SWANLAB_MODES = {"cloud": "online", "local": "local", "offline": "offline", "disabled": "disabled"}
CONFIG_KEY = "lathe_config"


def rank_and_world() -> tuple[int, int]:
    """This process's global rank and the world size (launcher variables, else torch.distributed)."""
    if "RANK" in os.environ or "WORLD_SIZE" in os.environ:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_rank_zero() -> bool:
    return rank_and_world()[0] == 0


def init_kwargs(cfg: Any) -> dict[str, Any]:
    """Arguments of ``swanlab.init`` for this config (secrets go in ``settings``, never printed)."""
    import swanlab

    hosts = {"api_key": setting(cfg, "swanlab_api_key"), "web_host": cfg.swanlab_web_host,
             "api_host": cfg.swanlab_api_host}
    settings = swanlab.Settings(interactive=False, **{k: v for k, v in hosts.items() if v})
    kwargs = {"project": cfg.swanlab_project, "name": cfg.swanlab_experiment_name,
              "description": cfg.swanlab_description, "workspace": cfg.swanlab_workspace,
              "mode": SWANLAB_MODES[mode(cfg)]}
    return {**{k: v for k, v in kwargs.items() if v is not None}, "settings": settings}


def start(cfg: Any) -> None:
    """Start the run with the resolved config (secrets redacted) and the saved config file."""
    import swanlab

    from lathe.config.save import CONFIG_FILE, resolved_dict

    if swanlab.has_run():
        raise LatheError("swanlab: a SwanLab run is already active in this process; call swanlab.finish() first")
    try:
        swanlab.init(config=resolved_dict(cfg), **init_kwargs(cfg))
    except Exception as exc:  # swanlab raises many kinds (login, network, settings)
        hint = " (set SWANLAB_API_KEY, run `swanlab login`, or use swanlab_mode: local)" if mode(cfg) == "cloud" else ""
        raise LatheError(f"swanlab: could not start the {mode(cfg)} run: {exc}{hint}") from None
    saved = Path(cfg.output_dir) / CONFIG_FILE
    if saved.is_file():
        swanlab.log({CONFIG_KEY: swanlab.Text(saved.read_text(encoding="utf-8"), caption=CONFIG_FILE)}, step=0)
        if mode(cfg) != "disabled":
            swanlab.save(str(saved), base_path=str(saved.parent), policy="now")


def upload_model(cfg: Any) -> list[str]:
    """``swanlab_log_model``: the final model's files (output_dir's top level) saved to the run."""
    import swanlab

    out = Path(cfg.output_dir)
    if not any(p.is_file() for p in out.iterdir()):
        return []
    return list(swanlab.save(str(out / "*"), base_path=str(out), policy="now"))


def finish(error: BaseException | None = None) -> None:
    """Finish the active run: success, aborted (an interrupt) or crashed (with the error's name)."""
    import swanlab

    if not swanlab.has_run():
        return
    if error is None:
        swanlab.finish()
    elif isinstance(error, KeyboardInterrupt | Interrupted):
        swanlab.finish(state="aborted")
    else:
        swanlab.finish(state="crashed", error=describe(error))


def describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
