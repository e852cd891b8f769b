"""Checks on ``output_dir`` before a run writes anything into it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from pydantic import BaseModel

from lathe.config.save import CONFIG_FILE, resolved_dict
from lathe.errors import LatheError

# Keys that may differ between a run and its own continuation.
_CONTINUATION_KEYS = {
    "lathe_version", "auto_resume_from_checkpoints", "resume_from_checkpoint", "overwrite_output_dir",
    "max_steps", "num_epochs", "save_steps", "saves_per_epoch", "save_total_limit", "plugins",
    "logging_steps", "use_tensorboard", "dataset_processes", "dataset_prepared_path",
}


def check_output_dir(cfg: BaseModel) -> Path:
    """Fail clearly when ``output_dir`` can't be written, or holds another run's outputs.

    Another run's outputs (a saved config that differs beyond keys a continuation may
    change) are refused unless the config resumes or sets ``overwrite_output_dir: true``.
    """
    out = Path(cfg.output_dir)  # type: ignore[attr-defined]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".lathe-write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LatheError(f"output_dir {out} is not writable: {reason}") from None
    saved_file = out / CONFIG_FILE
    if not saved_file.exists():
        return out
    resuming = bool(cfg.auto_resume_from_checkpoints or cfg.resume_from_checkpoint)  # type: ignore[attr-defined]
    if resuming or cfg.overwrite_output_dir:  # type: ignore[attr-defined]
        return out
    try:
        saved = yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        saved = {}
    current = resolved_dict(cfg)
    differing = sorted(
        k for k in set(saved) | set(current)
        if k not in _CONTINUATION_KEYS and saved.get(k) != current.get(k)
    )
    if differing:
        shown = ", ".join(differing[:5]) + (" …" if len(differing) > 5 else "")
        raise LatheError(
            f"output_dir {out} holds the outputs of a different run (its {CONFIG_FILE} differs in: "
            f"{shown}); choose another output_dir, resume with auto_resume_from_checkpoints: true, "
            "or set overwrite_output_dir: true"
        )
    return out


