"""``report.html``: a run's curves, data report, resolved config and environment on one static page.

``lathe train`` writes ``lathe_run.json`` (the trainer's log and the data report) and renders the
page into ``output_dir`` when it finishes; ``lathe report OUTPUT_DIR`` renders it again, also for a
run that stopped early (from its last checkpoint's ``trainer_state.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lathe.errors import LatheError

RUN_FILE = "lathe_run.json"
REPORT_FILE = "report.html"
CORE_LIBRARIES = ("lathe", "torch", "transformers", "peft", "accelerate", "datasets", "pydantic")


def environment() -> dict[str, str]:
    """Versions of python, torch, CUDA, the libraries lathe uses and the installed plugins."""
    import platform
    from importlib import metadata

    from lathe.plugins import describe_all

    env = {"python": f"{platform.python_version()} ({platform.platform()})"}
    for dist in CORE_LIBRARIES:
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = "not installed"
    import torch

    env["cuda"] = f"{torch.version.cuda or 'none'} (available: {torch.cuda.is_available()})"
    if torch.cuda.is_available():
        env["gpu"] = f"{torch.cuda.device_count()}× {torch.cuda.get_device_name(0)}"
    for info in describe_all():
        env[info.distribution] = info.version + (f" (broken: {info.error})" if info.error else "")
    return env


def save_run(output_dir: str | Path, log_history: list[dict[str, Any]], data_report: Any) -> Path:
    """Write ``lathe_run.json``: the trainer's log lines, the data report and the environment."""
    record = {
        "log_history": log_history,
        "data_report": data_report.to_json() if data_report is not None else None,
        "environment": environment(),
    }
    path = Path(output_dir) / RUN_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def load_run(output_dir: Path) -> dict[str, Any]:
    """The run record of ``output_dir``, or one rebuilt from its last checkpoint."""
    path = output_dir / RUN_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    states = sorted(output_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[-1]))
    if not states:
        raise LatheError(f"{output_dir}: no {RUN_FILE} and no checkpoint-*/trainer_state.json; is it a lathe output_dir?")
    state = json.loads(states[-1].read_text(encoding="utf-8"))
    return {"log_history": state.get("log_history", []), "data_report": None, "environment": environment(),
            "source": str(states[-1].relative_to(output_dir))}


def write_report(output_dir: str | Path) -> Path:
    """Render ``report.html`` into ``output_dir`` from its run record and ``lathe_config.yaml``."""
    from lathe.config.save import CONFIG_FILE
    from lathe.report.page import render

    out = Path(output_dir)
    if not out.is_dir():
        raise LatheError(f"{out}: no such output directory")
    config = out / CONFIG_FILE
    text = config.read_text(encoding="utf-8") if config.is_file() else None
    target = out / REPORT_FILE
    target.write_text(render(load_run(out), text, title=out.resolve().name), encoding="utf-8")
    return target


__all__ = ["REPORT_FILE", "RUN_FILE", "environment", "load_run", "save_run", "write_report"]
