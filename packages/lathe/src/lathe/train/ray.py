"""``use_ray``: the same ``lathe train`` run, executed by Ray Train's ``TorchTrainer`` on
``ray_num_workers`` workers (a local Ray cluster unless one is already connected).

Each worker re-validates the config and runs :func:`lathe.train.run.train`; Ray sets up the
process group (gloo without GPUs, nccl with), so the HF Trainer sees an ordinary distributed
run and DeepSpeed, if configured, runs inside it. The config travels inside the worker
function (pickled into Ray's object store), not as ``train_loop_config``, which Ray writes
to disk: secrets stay out of files.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.config import Config
    from lathe.plugins import Plugins
    from lathe.train.run import TrainResult

INSTALL = "pip install 'lathe[ray]'"
RAY_KEYS = ("use_ray", "ray_num_workers", "resources_per_worker", "ray_run_name")


def resources(cfg: Config) -> dict[str, float]:
    """What each worker reserves: ``resources_per_worker``, else one GPU when CUDA is there,
    else one CPU."""
    import torch

    if cfg.resources_per_worker is not None:
        return dict(cfg.resources_per_worker)
    return {"GPU": 1} if torch.cuda.is_available() else {"CPU": 1}


def _worker(data: dict[str, Any], plugin_names: list[str], cwd: str) -> None:
    """One Ray worker: the run as ``lathe train`` would do it, in the driver's folder."""
    from ray import train as ray_train

    from lathe.config import validate
    from lathe.plugins import Plugins
    from lathe.train.run import train

    os.chdir(cwd)  # relative paths in the config mean what they meant to the driver
    plugins = Plugins.load(plugin_names)
    cfg = validate(data, plugins, source="<ray worker>")
    result = train(cfg, plugins)
    ray_train.report({"losses": result.losses, **result.metrics})


def train_with_ray(cfg: Config, plugins: Plugins) -> TrainResult:
    """Run the training on Ray Train workers and return rank 0's result."""
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.train") is None:
        raise LatheError(f"use_ray: Ray Train is not installed: {INSTALL}")
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from lathe.train.run import TrainResult

    data = {k: v for k, v in cfg.model_dump(exclude_unset=True).items() if k not in RAY_KEYS}
    names, cwd = plugins.names, os.getcwd()
    per_worker = resources(cfg)
    on_gpu = per_worker.get("GPU", 0) > 0
    out = Path(cfg.output_dir).absolute()
    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, log_to_driver=True)
    try:
        trainer = TorchTrainer(
            lambda: _worker(data, names, cwd),
            scaling_config=ScalingConfig(
                num_workers=cfg.ray_num_workers,
                resources_per_worker=per_worker,
                use_gpu=on_gpu,
            ),
            run_config=RunConfig(name=cfg.ray_run_name, storage_path=str(out)),
        )
        result = trainer.fit()
    except Exception as exc:  # Ray wraps a worker's error; show the worker's own message
        cause = exc.__cause__ or exc
        raise LatheError(f"use_ray: the Ray Train run failed: {type(cause).__name__}: {cause}") from exc
    finally:
        if started:
            ray.shutdown()
    metrics = dict(result.metrics or {})
    losses = list(metrics.pop("losses", []))
    return TrainResult(output_dir=out, metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                       losses=losses)
