"""The engine of a multi-process run, as ``TrainingArguments``: DDP's knobs, FSDP (through
transformers' ``fsdp``/``fsdp_config``, which build accelerate's FSDP plugin) and N-D
parallelism (accelerate's ``ParallelismConfig``). The world size is checked against the N-D
sizes here, in the launched processes, and by ``--num-processes`` before launching."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.config import Config

_SIZES = ("dp_shard_size", "dp_replicate_size", "tensor_parallel_size", "context_parallel_size")


def fsdp_enabled(cfg: Config) -> bool:
    return bool(cfg.fsdp_config or cfg.fsdp)


def fsdp_version(cfg: Config) -> int:
    """``fsdp_version`` (top level or in ``fsdp_config``); 2 when unset."""
    inner = cfg.fsdp_config.fsdp_version if cfg.fsdp_config else None
    return cfg.fsdp_version or inner or 2


def final_state_dict_type(cfg: Config) -> str | None:
    inner = cfg.fsdp_config.final_state_dict_type if cfg.fsdp_config else None
    return inner or cfg.fsdp_final_state_dict_type


def cp_size(cfg: Config) -> int:
    """``context_parallel_size`` (``sequence_parallel_degree`` is its old name)."""
    return cfg.context_parallel_size or cfg.sequence_parallel_degree or 1


def nd_sizes(cfg: Config, world: int) -> dict[str, int]:
    """The N-D sizes for ``world`` processes (``dp_shard_size`` unset: what the others leave),
    or a clear error when their product is not the world size."""
    given = {"dp_replicate_size": cfg.dp_replicate_size or 1, "tensor_parallel_size": cfg.tensor_parallel_size or 1,
             "context_parallel_size": cp_size(cfg)}
    others = given["dp_replicate_size"] * given["tensor_parallel_size"] * given["context_parallel_size"]
    shard = cfg.dp_shard_size
    if shard is None:
        if world % others:
            raise LatheError(f"dp_replicate_size × tensor_parallel_size × context_parallel_size = {others} does not "
                             f"divide the world size ({world} processes)")
        shard = world // others
    sizes = {"dp_shard_size": shard, **given}
    product = shard * others
    if product != world:
        shown = " × ".join(f"{k} {v}" for k, v in sizes.items())
        raise LatheError(f"{shown} = {product}, but the run has {world} processes (world size): the product "
                         "of the N-D sizes must equal the number of processes")
    return sizes


def uses_nd(cfg: Config) -> bool:
    return any(getattr(cfg, k) not in (None, 1) for k in _SIZES) or cp_size(cfg) > 1


def check_world(cfg: Config, world: int) -> None:
    """Config facts that depend on the number of processes (before launching, and at start)."""
    if cfg.ddp is False and world > 1 and not fsdp_enabled(cfg):
        raise LatheError(f"ddp: false, but the run has {world} processes and no fsdp_config to shard with")
    if uses_nd(cfg):
        nd_sizes(cfg, world)
    if world > 1 and fsdp_enabled(cfg) and (cfg.load_in_4bit or cfg.load_in_8bit):
        import torch

        if not torch.cuda.is_available():
            raise LatheError("load_in_4bit/load_in_8bit with fsdp_config (QLoRA under FSDP) needs CUDA GPUs: FSDP "
                             "shards bitsandbytes' packed weights only on CUDA; on this machine train QLoRA in "
                             "one process, or LoRA under FSDP")


def _fsdp_config(cfg: Config) -> dict[str, Any]:
    """transformers' ``fsdp_config`` from Axolotl's keys (``offload_params`` is its ``cpu_offload``)."""
    version = fsdp_version(cfg)
    out: dict[str, Any] = {"version": version}
    block = cfg.fsdp_config
    if block is None:
        return out
    for ours, theirs in (("offload_params", "cpu_offload"), ("activation_checkpointing", "activation_checkpointing"),
                         ("cpu_ram_efficient_loading", "cpu_ram_efficient_loading"),
                         ("state_dict_type", "state_dict_type"), ("auto_wrap_policy", "auto_wrap_policy"),
                         ("transformer_layer_cls_to_wrap", "transformer_layer_cls_to_wrap"),
                         ("min_num_params", "min_num_params"), ("reshard_after_forward", "reshard_after_forward")):
        value = getattr(block, ours)
        if value is not None:
            out[theirs] = value
    if version == 1:
        for key in ("sync_module_states", "use_orig_params"):
            if getattr(block, key) is not None:
                out[key] = getattr(block, key)
    elif block.use_orig_params is False or block.sync_module_states is False:
        raise LatheError("fsdp_config: use_orig_params/sync_module_states: false exist only with fsdp_version: 1 "
                         "(FSDP2 always keeps the original parameters and starts every rank from the same weights)")
    if block.reshard_after_forward is not None and version == 1:
        out["reshard_after_forward"] = "full_shard" if block.reshard_after_forward else "shard_grad_op"
    return out


def distributed_training_args(cfg: Config) -> dict[str, Any]:
    """``TrainingArguments`` keywords for DDP, FSDP and N-D parallelism."""
    import torch

    from lathe.distributed.ranks import DEFAULT_TIMEOUT, world_size

    kwargs: dict[str, Any] = {"ddp_timeout": cfg.ddp_timeout or DEFAULT_TIMEOUT}
    for key in ("ddp_find_unused_parameters", "ddp_bucket_cap_mb", "ddp_broadcast_buffers"):
        if getattr(cfg, key) is not None:
            kwargs[key] = getattr(cfg, key)
    if fsdp_enabled(cfg):
        kwargs["fsdp"] = " ".join(cfg.fsdp) if cfg.fsdp else True
        kwargs["fsdp_config"] = _fsdp_config(cfg)
    world = world_size()
    if world > 1 and not torch.cuda.is_available():
        kwargs["use_cpu"] = True  # gloo on CPU (accelerate's MULTI_CPU); otherwise each rank trains alone
    check_world(cfg, world)
    if uses_nd(cfg):
        sizes = nd_sizes(cfg, world)
        gpu_only = [k for k in ("tensor_parallel_size", "context_parallel_size") if sizes[k] > 1]
        if gpu_only and not torch.cuda.is_available():
            raise LatheError(f"{', '.join(gpu_only)}: tensor and context parallelism run on CUDA GPUs only "
                             "(accelerate's TP plan and SDPA context parallelism); this machine has none")
        if sizes["dp_shard_size"] > 1 and not fsdp_enabled(cfg):
            raise LatheError("dp_shard_size > 1 shards the model with FSDP: add fsdp_config (fsdp_version: 2)")
        from accelerate.parallelism_config import ParallelismConfig

        kwargs["parallelism_config"] = ParallelismConfig(
            dp_replicate_size=sizes["dp_replicate_size"], dp_shard_size=sizes["dp_shard_size"],
            tp_size=sizes["tensor_parallel_size"], cp_size=sizes["context_parallel_size"])
    return kwargs


def enable_fsdp_on_cpu(trainer: Any) -> None:
    """accelerate turns FSDP on only for accelerator devices: on a CPU-only machine (gloo) it
    would silently train with DDP instead. FSDP2's ``fully_shard`` runs on CPU, so this sets the
    trainer's accelerator state to FSDP with the plugin transformers built from ``fsdp_config``."""
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    plugin_args = getattr(trainer.args, "fsdp_plugin_args", None)
    state = trainer.accelerator.state
    if plugin_args is None or state.distributed_type != DistributedType.MULTI_CPU:
        return
    if plugin_args.get("fsdp_version") != 2:
        raise LatheError("fsdp_version: 1 needs GPUs (FSDP1 on CPU is not supported by accelerate); "
                         "use fsdp_version: 2 on this machine")
    plugin = FullyShardedDataParallelPlugin(**plugin_args)
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    state.distributed_type = DistributedType.FSDP
    state.fsdp_plugin = plugin
    trainer.is_fsdp_enabled = True
