"""Running lm-evaluation-harness on a model in memory, and writing its results.

The tasks are resolved before anything is loaded (a typo in ``lm_eval_tasks`` is a
config error, not a failure after hours of training). When every task is found in
``lm_eval_include_path``, lm-eval's built-in task index (thousands of YAML files) is not
built at all.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

RESULTS_DIR = "lm_eval_results"


def task_manager(tasks: list[str], include_path: str | None) -> Any:
    """lm-eval's TaskManager that knows every task in ``tasks``; an error names the unknown ones."""
    from lm_eval.tasks import TaskManager

    if include_path is not None:
        local = TaskManager(include_path=include_path, include_defaults=False)
        if all(local.match_tasks([t]) for t in tasks):
            return local
    manager = TaskManager(include_path=include_path)
    unknown = [t for t in tasks if not manager.match_tasks([t])]
    if unknown:
        where = "lm-eval's tasks" + (f" or lm_eval_include_path {include_path}" if include_path else "")
        raise LatheError(f"lm_eval_tasks: {', '.join(unknown)} not found in {where}")
    return manager


def evaluate(
    cfg: Any, model: torch.nn.Module | str, tokenizer: PreTrainedTokenizerBase | str | None = None
) -> dict[str, Any]:
    """lm-eval's results for ``cfg.lm_eval_tasks`` on ``model`` (a model in memory, or a path
    or hub name that lm-eval loads itself)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    if not cfg.lm_eval_tasks:
        raise LatheError("lm_eval_tasks is empty: name the lm-eval tasks to run")
    manager = task_manager(cfg.lm_eval_tasks, cfg.lm_eval_include_path)
    if isinstance(model, str):
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.lm_eval_batch_size,
                  device=_device(), trust_remote_code=cfg.trust_remote_code)
    else:
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.lm_eval_batch_size)
    limit = cfg.lm_eval_limit
    if limit is not None and limit >= 1:
        limit = int(limit)
    results = lm_eval.simple_evaluate(
        model=lm, tasks=list(cfg.lm_eval_tasks), num_fewshot=cfg.lm_eval_num_fewshot, limit=limit,
        task_manager=manager, log_samples=False, random_seed=cfg.seed, numpy_random_seed=cfg.seed,
        torch_random_seed=cfg.seed, fewshot_random_seed=cfg.seed,
    )
    if results is None:  # only ranks other than 0 of a distributed lm-eval run get None
        return {}
    return dict(results)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def metrics(results: dict[str, Any]) -> dict[str, float]:
    """``{"lm_eval/<task>/<metric>": value}`` for every number in the results table
    (``acc,none`` becomes ``acc``; another filter keeps its name: ``exact_match,strict``)."""
    flat = {}
    for task, values in results.get("results", {}).items():
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            name = key.removesuffix(",none").replace(",", "_")
            flat[f"lm_eval/{task}/{name}"] = float(value)
    return flat


def write_results(results: dict[str, Any], output_dir: str | Path, model_name: str) -> Path:
    """``output_dir/lm_eval_results/<timestamp>/results.json``; returns the file."""
    from lm_eval.utils import handle_non_serializable

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(output_dir) / RESULTS_DIR / stamp
    n = 1
    while folder.exists():
        n += 1
        folder = Path(output_dir) / RESULTS_DIR / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    payload = {"model": model_name, **results}
    path = folder / "results.json"
    path.write_text(json.dumps(payload, indent=2, default=handle_non_serializable), encoding="utf-8")
    return path


def report(results: dict[str, Any], path: Path) -> None:
    """Print lm-eval's table of the results, and where they were written."""
    from lm_eval.utils import make_table

    print(make_table(results))
    if "groups" in results:
        print(make_table(results, "groups"))
    print(f"lathe: lm_eval: results written to {path}", file=sys.stderr)
