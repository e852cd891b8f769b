"""lathe hook implementations for lm-evaluation-harness."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lathe.errors import LatheError
from lathe.hookspecs import hookimpl
from lathe_lm_eval.config import LmEvalConfig


@hookimpl
def lathe_config_model() -> type[LmEvalConfig]:
    return LmEvalConfig


@hookimpl
def lathe_validate_config(cfg: Any) -> list[str]:
    problems = []
    if cfg.lm_eval_include_path is not None and not Path(cfg.lm_eval_include_path).is_dir():
        problems.append(f"lm_eval_include_path: {cfg.lm_eval_include_path} is not a folder")
    elif cfg.lm_eval_tasks:
        from lathe_lm_eval.evaluate import task_manager

        try:
            task_manager(cfg.lm_eval_tasks, cfg.lm_eval_include_path)
        except LatheError as exc:
            problems.append(str(exc))
    return problems


@hookimpl
def lathe_post_train(cfg: Any, model: Any, trainer: Any) -> None:
    from lathe_lm_eval.run import evaluate_after_training

    if not cfg.lm_eval_post_train:
        return
    if not cfg.lm_eval_tasks:
        print("lathe: lm_eval: no lm_eval_tasks; nothing evaluated", file=sys.stderr)
        return
    evaluate_after_training(cfg, model, trainer)


@hookimpl
def lathe_register_commands(cli: Any) -> None:
    from lathe_lm_eval.cli import lm_eval_command

    cli.add_command(lm_eval_command)
