"""Keys for training on several processes: DDP, FSDP (1 and 2) and N-D parallelism sizes.

Axolotl's names and nesting: ``fsdp_config`` accepts each key with or without the ``fsdp_``
prefix (``fsdp_offload_params`` and ``offload_params``), and ``version`` for ``fsdp_version``.
How many processes run is the launcher's business (``lathe train --launcher``); the sizes here
are checked against the world size in the launched processes (:mod:`lathe.distributed.engine`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lathe.config.base import ConfigModel

StateDictType = Literal["FULL_STATE_DICT", "LOCAL_STATE_DICT", "SHARDED_STATE_DICT"]


class FsdpConfig(ConfigModel):
    """``fsdp_config:``, Axolotl's FSDPConfig keys (either spelling)."""

    fsdp_version: Literal[1, 2] | None = Field(None, description="FSDP version (same as the top-level fsdp_version).")
    activation_checkpointing: bool | None = Field(None, description="FSDP's own activation checkpointing of each wrapped layer.")
    offload_params: bool | None = Field(None, description="Keep parameters (and gradients, optimizer state) on the CPU.")
    sync_module_states: bool | None = Field(None, description="FSDP1: broadcast rank 0's weights to every rank when wrapping.")
    cpu_ram_efficient_loading: bool | None = Field(None, description="Only rank 0 loads the weights; the others get them when sharding.")
    use_orig_params: bool | None = Field(None, description="FSDP1: keep the original parameters visible (needed with LoRA).")
    state_dict_type: StateDictType | None = Field(None, description="How checkpoints are written: FULL_STATE_DICT or SHARDED_STATE_DICT.")
    final_state_dict_type: StateDictType | None = Field(None, description="SHARDED_STATE_DICT: the final save is sharded only (merge it with lathe merge-sharded-fsdp-weights).")
    auto_wrap_policy: Literal["TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP"] | None = Field(None, description="Which modules become FSDP units.")
    transformer_layer_cls_to_wrap: str | None = Field(None, description="Layer class to wrap (default: the model's _no_split_modules).")
    min_num_params: int | None = Field(None, ge=1, description="SIZE_BASED_WRAP: wrap modules with at least this many parameters.")
    reshard_after_forward: bool | None = Field(None, description="Free gathered parameters after forward (default true).")
    mixed_precision_policy: str | None = Field(None, description="FSDP mixed precision: fp16, bf16 or fp32 (default: from bf16/fp16).")
    cpu_offload_pin_memory: bool | None = Field(None, description="Not available: accelerate has no setting for it.")

    @model_validator(mode="before")
    @classmethod
    def _axolotl_spellings(cls, data: Any) -> Any:
        """``fsdp_offload_params`` → ``offload_params``; ``version`` → ``fsdp_version``."""
        if not isinstance(data, dict):
            return data
        out: dict[str, Any] = {}
        for key, value in data.items():
            name = key[len("fsdp_"):] if key.startswith("fsdp_") and key != "fsdp_version" else key
            name = "fsdp_version" if name == "version" else name
            if name in out and out[name] != value:
                raise ValueError(f"fsdp_config: {key} and {name} are both given, with different values")
            out[name] = value
        return out

    @model_validator(mode="after")
    def _checks(self) -> FsdpConfig:
        if self.auto_wrap_policy == "SIZE_BASED_WRAP" and self.min_num_params is None:
            raise ValueError("fsdp_config.min_num_params is required when auto_wrap_policy is SIZE_BASED_WRAP")
        if self.cpu_offload_pin_memory is not None:
            raise ValueError("fsdp_config.cpu_offload_pin_memory: not available (accelerate has no setting for it; "
                             "offloaded parameters always use pinned memory)")
        if self.mixed_precision_policy not in (None, "fp16", "bf16", "fp32", "no"):
            raise ValueError(f"fsdp_config.mixed_precision_policy: {self.mixed_precision_policy!r} is not one of fp16, bf16, fp32")
        return self


class DistributedSection(ConfigModel):
    ddp: bool | None = Field(None, description="false refuses a multi-process run without FSDP (true: DDP whenever several processes run, the default).")
    ddp_timeout: int | None = Field(None, ge=1, description="Seconds a collective (and the rank-0 data barrier) waits before failing (default 1800).")
    ddp_find_unused_parameters: bool | None = Field(None, description="DDP: look for parameters without a gradient each step.")
    ddp_bucket_cap_mb: int | None = Field(None, ge=1, description="DDP: gradient bucket size in MB.")
    ddp_broadcast_buffers: bool | None = Field(None, description="DDP: broadcast buffers from rank 0 at each forward.")

    fsdp: list[str] | None = Field(None, description="Legacy FSDP switch (e.g. [full_shard, auto_wrap]); prefer fsdp_config.")
    fsdp_config: FsdpConfig | None = Field(None, description="Turns FSDP on; Axolotl's keys, with or without the fsdp_ prefix.")
    fsdp_version: Literal[1, 2] | None = Field(None, description="FSDP version: 2 (default) or 1.")
    fsdp_final_state_dict_type: StateDictType | None = Field(None, description="Deprecated spelling of fsdp_config.final_state_dict_type.")

    dp_shard_size: int | None = Field(None, ge=1, description="Processes each model is sharded across (FSDP2).")
    dp_replicate_size: int | None = Field(None, ge=1, description="Replicas of the (sharded) model.")
    tensor_parallel_size: int | None = Field(None, ge=1, description="Tensor-parallel group size.")
    context_parallel_size: int | None = Field(None, ge=1, description="Processes each sequence is split across (GPU only).")
    sequence_parallel_degree: int | None = Field(None, ge=1, description="Deprecated spelling of context_parallel_size.")

    @model_validator(mode="after")
    def _distributed_rules(self) -> DistributedSection:
        fsdp = self.fsdp_config
        if fsdp and fsdp.fsdp_version and self.fsdp_version and fsdp.fsdp_version != self.fsdp_version:
            raise ValueError(f"fsdp_version: {self.fsdp_version} contradicts fsdp_config.fsdp_version: {fsdp.fsdp_version}")
        if (self.fsdp_version or self.fsdp_final_state_dict_type) and not (fsdp or self.fsdp):
            raise ValueError("fsdp_version/fsdp_final_state_dict_type need fsdp_config (the block that turns FSDP on)")
        if fsdp and fsdp.cpu_ram_efficient_loading and (self.fsdp_version or fsdp.fsdp_version or 2) == 2 \
                and getattr(self, "load_in_4bit", False):
            raise ValueError("fsdp_config.cpu_ram_efficient_loading is not available with load_in_4bit under FSDP2 "
                             "(rank 0 alone would quantize the weights); set it to false")
        cp = self.context_parallel_size or self.sequence_parallel_degree or 1
        if cp > 1 and getattr(self, "sample_packing", False):
            raise ValueError("context_parallel_size > 1 with sample_packing: accelerate's context parallelism runs "
                             "SDPA with one causal mask over each packed row, so packed sequences would attend each "
                             "other; set sample_packing: false")
        if cp > 1 and getattr(self, "attn_implementation", None) not in (None, "sdpa"):
            raise ValueError("context_parallel_size > 1 needs attn_implementation: sdpa (accelerate's context "
                             "parallelism shards SDPA)")
        if self.ddp is False and (fsdp or self.fsdp):
            raise ValueError("ddp: false contradicts fsdp_config")
        if (self.context_parallel_size and self.sequence_parallel_degree
                and self.context_parallel_size != self.sequence_parallel_degree):
            raise ValueError("context_parallel_size and sequence_parallel_degree (its old name) differ")
        return self
