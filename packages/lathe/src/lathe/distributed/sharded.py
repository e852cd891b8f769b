"""FSDP's outputs: the final save (a plain Hugging Face model, or sharded only when the config
asks with ``final_state_dict_type: SHARDED_STATE_DICT``) and ``lathe merge-sharded-fsdp-weights``,
which turns a sharded save into one HF-layout safetensors model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.config import Config

SHARDED_DIR = "pytorch_model_fsdp_0"  # accelerate's name for a sharded model save


def save_final(trainer: Any, cfg: Config, out: Path) -> None:
    """Every rank takes part: the full state dict is gathered (onto rank 0, on the CPU) and
    rank 0 writes it as safetensors; sharded only, every rank writes its shards."""
    from lathe.distributed.engine import final_state_dict_type

    accelerator = trainer.accelerator
    if final_state_dict_type(cfg) == "SHARDED_STATE_DICT":
        from accelerate.utils import save_fsdp_model

        plugin = accelerator.state.fsdp_plugin
        kept = plugin.state_dict_type
        plugin.set_state_dict_type("SHARDED_STATE_DICT")
        try:
            save_fsdp_model(plugin, accelerator, trainer.model, str(out))
        finally:
            plugin.set_state_dict_type(kept)
        if accelerator.is_main_process:
            accelerator.unwrap_model(trainer.model).config.save_pretrained(str(out))
        return
    save_full(trainer, out)


def save_full(trainer: Any, out: Path) -> None:
    """The whole model (or adapter) gathered onto rank 0, on the CPU, written in the HF layout.
    Every rank calls it. torch's own full state dict is used: the FSDP2 parameters are DTensors."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    accelerator = trainer.accelerator
    model = accelerator.unwrap_model(trainer.model)
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if accelerator.is_main_process:
        model.save_pretrained(str(out), state_dict=full)
        if trainer.processing_class is not None:
            trainer.processing_class.save_pretrained(str(out))


def merge_sharded(output_dir: Path) -> Path:
    """``output_dir/pytorch_model_fsdp_0`` (or a checkpoint's) → ``output_dir/model.safetensors``
    beside its ``config.json``: a model ``from_pretrained`` loads."""
    from accelerate.utils import merge_fsdp_weights

    sharded = output_dir / SHARDED_DIR
    if not sharded.is_dir():
        raise LatheError(f"{output_dir}: no sharded FSDP model ({SHARDED_DIR}/) to merge; it is written by "
                         "fsdp_config.final_state_dict_type: SHARDED_STATE_DICT (and by SHARDED_STATE_DICT checkpoints)")
    copy_config(output_dir.parent, output_dir)  # a checkpoint: the run's config.json
    if not (output_dir / "config.json").is_file():
        raise LatheError(f"{output_dir}: no config.json beside {SHARDED_DIR}/ (the model's config is needed for "
                         "an HF-layout model)")
    merge_fsdp_weights(str(sharded), str(output_dir), safe_serialization=True)
    target = output_dir / "model.safetensors"
    if not target.is_file():
        raise LatheError(f"{output_dir}: merging {SHARDED_DIR}/ wrote no model.safetensors")
    return target


def copy_config(source: Path, target: Path) -> None:
    """A checkpoint keeps no config.json when sharded: take the run's."""
    if not (target / "config.json").is_file() and (source / "config.json").is_file():
        shutil.copy2(source / "config.json", target / "config.json")


def check_resumable(cfg: Config, checkpoint: str | None, world: int) -> None:
    """A checkpoint with FSDP-sharded weights resumes under FSDP on any number (> 1) of processes
    (the shards are re-split on load); one process cannot read it: a clear error, not a crash."""
    from lathe.distributed.engine import fsdp_enabled

    if checkpoint is None or not (Path(checkpoint) / SHARDED_DIR).is_dir():
        return
    if world > 1 and fsdp_enabled(cfg):
        return
    writers = len(list(Path(checkpoint).glob("rng_state_*.pth"))) or "several"
    raise LatheError(
        f"{checkpoint} holds FSDP-sharded weights written by {writers} processes; resume it with fsdp_config on "
        f"several processes (any number: the shards are re-split on load), or merge it with `lathe "
        f"merge-sharded-fsdp-weights {checkpoint}` and start a new run from it (base_model)")
