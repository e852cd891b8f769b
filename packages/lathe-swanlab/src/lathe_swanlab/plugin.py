"""lathe hook implementations for SwanLab tracking.

A run with SwanLab on (rank 0 only): ``pre_model_load`` starts the SwanLab run with the
resolved config and sends the Lark "started" message; ``callbacks`` adds the metrics
callback; ``post_trainer_create`` adds the completion table when the trainer produces
completions (``trainer.lathe_completions``); ``post_train`` uploads the model
(``swanlab_log_model``), sends "completed" and finishes the run; ``run_error`` sends the
error message and finishes the run as crashed (or aborted); ``post_train_unload`` closes
whatever is left. The state of a run in progress is kept in ``_ACTIVE`` under the id of its
config and dropped in ``post_train_unload``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from lathe.hookspecs import hookimpl
from lathe_swanlab.config import SwanLabConfig, enabled, mode, setting


@dataclass
class RunState:
    notifier: Any = None
    metrics: Any = None
    completions: Any = None
    details: dict[str, Any] = field(default_factory=dict)


_ACTIVE: dict[int, RunState] = {}


def _say(text: str) -> None:
    print(f"lathe: swanlab: {text}", file=sys.stderr)


@hookimpl
def lathe_config_model() -> type[SwanLabConfig]:
    return SwanLabConfig


@hookimpl
def lathe_validate_config(cfg: Any) -> list[str]:
    from lathe_swanlab import checks

    found = checks.problems(cfg)
    if not found:
        checks.warn(cfg)
        if cfg.use_swanlab is None and cfg.swanlab_project:
            _say("use_swanlab enabled automatically because swanlab_project is set")
    return found


@hookimpl
def lathe_pre_model_load(cfg: Any) -> None:
    if not enabled(cfg):
        return
    from lathe_swanlab import session
    from lathe_swanlab.callbacks import SwanLabMetrics
    from lathe_swanlab.lark import LarkNotifier, message

    rank, world = session.rank_and_world()
    if world > 1 and rank == 0:
        _say(f"distributed training detected (world_size={world}), mode {mode(cfg)}: only rank 0 starts SwanLab "
             "and sends Lark notifications; the other ranks skip both")
    if rank != 0:
        return
    session.start(cfg)
    state = RunState(metrics=SwanLabMetrics(), details={"Mode": mode(cfg)})
    _ACTIVE[id(cfg)] = state
    url = setting(cfg, "swanlab_lark_webhook_url")
    if url and mode(cfg) != "disabled":
        secret = setting(cfg, "swanlab_lark_secret")
        state.notifier = LarkNotifier(url, secret)
        _say("registered Lark notifications " + ("with HMAC authentication" if secret else "(no HMAC secret)"))
        state.notifier.send(message("training started", cfg, state.details))
    _say(f"run started: project {cfg.swanlab_project}, mode {mode(cfg)}")


@hookimpl
def lathe_callbacks(cfg: Any) -> list[Any]:
    state = _ACTIVE.get(id(cfg))
    return [state.metrics] if state is not None else []


@hookimpl
def lathe_post_trainer_create(cfg: Any, trainer: Any) -> None:
    state = _ACTIVE.get(id(cfg))
    log = getattr(trainer, "lathe_completions", None)
    if state is None or log is None or not cfg.swanlab_log_completions:
        return
    from lathe_swanlab.completions import CompletionTableCallback

    state.completions = CompletionTableCallback(cfg.swanlab_completion_log_interval, cfg.swanlab_completion_max_buffer)
    log.subscribe(state.completions.buffer.add)
    trainer.add_callback(state.completions)
    _say(f"completion tables on for {type(trainer).__name__} (type: {log.kind}, every "
         f"{cfg.swanlab_completion_log_interval} steps, last {cfg.swanlab_completion_max_buffer} kept)")


@hookimpl
def lathe_post_train(cfg: Any, model: Any) -> None:
    state = _ACTIVE.get(id(cfg))
    if state is None:
        return
    from lathe_swanlab import session
    from lathe_swanlab.lark import message

    if cfg.swanlab_log_model:
        files = session.upload_model(cfg)
        _say(f"swanlab_log_model: {len(files)} files of {cfg.output_dir} saved to the run")
    if state.notifier is not None:
        last = state.metrics.last
        summary = {k: last[k] for k in ("train_loss", "loss", "eval_loss", "train_runtime", "epoch") if k in last}
        details = {**state.details, **{k: f"{v:.4g}" for k, v in summary.items()}}
        state.notifier.send(message("training completed", cfg, details))
    session.finish()


@hookimpl
def lathe_run_error(cfg: Any, error: BaseException) -> None:
    state = _ACTIVE.get(id(cfg))
    if state is None:
        return
    from lathe_swanlab import session
    from lathe_swanlab.lark import message

    if state.notifier is not None:
        state.notifier.send(message("training failed", cfg, {**state.details, "Error": session.describe(error)}))
    session.finish(error)


@hookimpl
def lathe_post_train_unload(cfg: Any) -> None:
    if _ACTIVE.pop(id(cfg), None) is not None:
        from lathe_swanlab import session

        session.finish(RuntimeError("the run ended before it completed"))
