"""Where checkpoints are written and found, and the final save in the Hugging Face layout.

Every checkpoint goes through :func:`write_checkpoint`, which stages it and only
moves a complete one into ``output_dir`` (:mod:`lathe.train.checkpoint_io`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError
from lathe.train.checkpoint_io import (
    latest_complete_checkpoint,
    remove_stale_staging,
    staged_checkpoint,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, Trainer

    from lathe.config import Config


def save_first_step_callback() -> Any:
    """``save_first_step``: a checkpoint after step 1 too (a quick check that saving works)."""
    from transformers import TrainerCallback

    class SaveFirstStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step == 1:
                control.should_save = True

    return SaveFirstStep()


def resume_checkpoint(cfg: Config) -> str | None:
    """The checkpoint to resume from: ``resume_from_checkpoint``, or with
    ``auto_resume_from_checkpoints`` the newest complete one in ``output_dir``."""
    run_dir = Path(cfg.output_dir)
    remove_stale_staging(run_dir)
    if cfg.resume_from_checkpoint:
        path = Path(cfg.resume_from_checkpoint)
        if not path.is_dir():
            raise LatheError(f"resume_from_checkpoint: {path} is not a folder")
        if not (path / "trainer_state.json").is_file():
            raise LatheError(f"resume_from_checkpoint: {path} is not a complete checkpoint (no trainer_state.json)")
        found: Path | None = path
        if not any(path.glob("optimizer*")):
            raise LatheError(
                f"resume_from_checkpoint: {path} holds no optimizer state (saved with save_only_model?); "
                "it cannot be resumed: start from its weights with base_model instead"
            )
    elif cfg.auto_resume_from_checkpoints:
        found = latest_complete_checkpoint(run_dir)
    else:
        return None
    if found is not None:
        print(f"lathe: resuming from {found}", file=sys.stderr)
    return str(found) if found is not None else None


def write_checkpoint(trainer: Trainer, step: int, save: Callable[[], None]) -> Path:
    """Run ``save`` (the trainer's own checkpoint writer) into a staging folder, then publish
    ``output_dir/checkpoint-<step>`` once complete, and apply ``save_total_limit``."""
    from transformers.trainer_utils import rotate_checkpoints

    from lathe.distributed.ranks import barrier, shared_token

    run_dir = Path(trainer.args.output_dir)
    main = trainer.accelerator.is_main_process  # type: ignore[attr-defined]
    with staged_checkpoint(run_dir, step, shared_token(), main, barrier) as staging:
        trainer.lathe_staging_dir = str(staging)  # type: ignore[attr-defined]
        try:
            save()
        finally:
            trainer.lathe_staging_dir = None  # type: ignore[attr-defined]
    best = trainer.state.best_model_checkpoint
    if best and best.startswith(str(staging)):
        trainer.state.best_model_checkpoint = str(run_dir / Path(best).name)
    if trainer.args.should_save:
        rotate_checkpoints(
            output_dir=str(run_dir),
            save_total_limit=trainer.args.save_total_limit,
            best_model_checkpoint=trainer.state.best_model_checkpoint,
        )
    return run_dir / f"checkpoint-{step}"


def save_outputs(trainer: Trainer, cfg: Config, tokenizer: PreTrainedTokenizerBase) -> Path:
    """The finished model in ``output_dir``: weights (full model or adapter) as safetensors,
    the model config, the tokenizer with its chat template, and the resolved lathe config."""
    from lathe.config.save import save_resolved

    out = Path(cfg.output_dir)
    if getattr(trainer, "is_fsdp_enabled", False):
        from lathe.distributed.sharded import save_final

        save_final(trainer, cfg, out)  # every rank takes part (the shards are gathered); rank 0 writes
    else:
        trainer.save_model(str(out))
    if trainer.args.should_save:
        tokenizer.save_pretrained(str(out))
        save_resolved(cfg, out)
    return out


def reload_converted_weights(model: Any, checkpoint: Path) -> bool:
    """Load a full model's checkpoint weights through ``from_pretrained`` when their names
    differ from the model's parameters, and copy them in; returns whether it did.

    transformers saves some models with converted names (a Qwen2-MoE's fused expert tensors
    as one tensor per expert) and converts them back only in ``from_pretrained``; the
    Trainer's resume loads the state dict non-strictly, so those weights would silently
    stay as they were before the resume.
    """
    import json

    from safetensors import safe_open

    single, index = checkpoint / "model.safetensors", checkpoint / "model.safetensors.index.json"
    if single.is_file():
        with safe_open(str(single), "pt") as f:
            saved = set(f.keys())
    elif index.is_file():
        saved = set(json.loads(index.read_text())["weight_map"])
    else:
        return False  # an adapter, or an engine's own format
    if saved <= set(model.state_dict()):
        return False
    fresh = type(model).from_pretrained(str(checkpoint), config=model.config, dtype=next(model.parameters()).dtype)
    model.load_state_dict(fresh.state_dict(), strict=True)
    return True
