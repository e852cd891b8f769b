"""DDP, FSDP and N-D keys → TrainingArguments / accelerate, and their validation (one process;
the multi-process runs are in tests/distributed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lathe.config import ConfigError
from lathe.distributed.engine import (
    check_world,
    distributed_training_args,
    enable_fsdp_on_cpu,
    nd_sizes,
)
from lathe.errors import LatheError
from lathe.train.args import build_training_arguments
from tests.train.conftest import make_plugins

PREFIXED = {"fsdp_version": 2, "fsdp_offload_params": True, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_transformer_layer_cls_to_wrap": "LlamaDecoderLayer", "fsdp_state_dict_type": "SHARDED_STATE_DICT",
            "fsdp_reshard_after_forward": False, "fsdp_activation_checkpointing": True,
            "fsdp_cpu_ram_efficient_loading": True}


def test_ddp_keys_reach_training_arguments(cfg_of) -> None:  # type: ignore[no-untyped-def]
    cfg = cfg_of(ddp_timeout=77, ddp_find_unused_parameters=True, ddp_bucket_cap_mb=5, ddp_broadcast_buffers=False)
    args = build_training_arguments(cfg, make_plugins(), 32, False)
    assert (args.ddp_timeout, args.ddp_find_unused_parameters, args.ddp_bucket_cap_mb, args.ddp_broadcast_buffers) == (
        77, True, 5, False)
    assert build_training_arguments(cfg_of(), make_plugins(), 32, False).ddp_timeout == 1800


def test_fsdp_config_takes_both_spellings_and_maps_to_accelerate(cfg_of) -> None:  # type: ignore[no-untyped-def]
    prefixed = cfg_of(fsdp_config=PREFIXED)
    plain = cfg_of(fsdp_config={k.removeprefix("fsdp_") if k != "fsdp_version" else "version": v
                                for k, v in PREFIXED.items()})
    assert prefixed.fsdp_config == plain.fsdp_config
    plugin = build_training_arguments(prefixed, make_plugins(), 32, False).fsdp_plugin_args
    assert plugin["fsdp_version"] == 2
    assert plugin["cpu_offload"] is True  # Axolotl's offload_params
    assert plugin["transformer_cls_names_to_wrap"] == "LlamaDecoderLayer"
    assert plugin["state_dict_type"] == "SHARDED_STATE_DICT"
    assert plugin["reshard_after_forward"] is False
    assert plugin["activation_checkpointing"] is True and plugin["cpu_ram_efficient_loading"] is True


def test_fsdp_version_defaults_to_2_and_1_is_fsdp1(cfg_of) -> None:  # type: ignore[no-untyped-def]
    default = build_training_arguments(cfg_of(fsdp_config={}), make_plugins(), 32, False).fsdp_plugin_args
    assert default["fsdp_version"] == 2
    cfg = cfg_of(fsdp_version=1, fsdp_config={"use_orig_params": False, "sync_module_states": True,
                                              "reshard_after_forward": False})
    one = build_training_arguments(cfg, make_plugins(), 32, False).fsdp_plugin_args
    assert one["fsdp_version"] == 1 and one["use_orig_params"] is False and one["sync_module_states"] is True
    assert one["reshard_after_forward"] == "shard_grad_op"
    legacy = build_training_arguments(cfg_of(fsdp=["full_shard", "auto_wrap"], fsdp_config={}), make_plugins(), 32, False)
    assert legacy.fsdp_plugin_args["reshard_after_forward"] is True
    assert build_training_arguments(cfg_of(), make_plugins(), 32, False).fsdp_plugin_args is None


@pytest.mark.parametrize(("overrides", "message"), [
    ({"fsdp_version": 2}, "need fsdp_config"),
    ({"fsdp_version": 1, "fsdp_config": {"version": 2}}, "contradicts"),
    ({"fsdp_config": {"auto_wrap_policy": "SIZE_BASED_WRAP"}}, "min_num_params is required"),
    ({"fsdp_config": {"offload_params": True, "fsdp_offload_params": False}}, "both given"),
    ({"fsdp_config": {"cpu_offload_pin_memory": False}}, "cpu_offload_pin_memory: not available"),
    ({"fsdp_config": {"mixed_precision_policy": "fp8"}}, "mixed_precision_policy"),
    ({"context_parallel_size": 2, "sequence_parallel_degree": 4}, "differ"),
    ({"ddp": False, "fsdp_config": {}}, "ddp: false contradicts"),
    ({"context_parallel_size": 2, "sample_packing": True}, "packed sequences would attend each other"),
    ({"sequence_parallel_degree": 2, "attn_implementation": "eager"}, "needs attn_implementation: sdpa"),
])
def test_bad_distributed_keys_are_config_errors(cfg_of, overrides, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        cfg_of(**overrides)


def test_fsdp2_only_keys_of_fsdp1_are_refused(cfg_of) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LatheError, match="only with fsdp_version: 1"):
        build_training_arguments(cfg_of(fsdp_config={"use_orig_params": False}), make_plugins(), 32, False)


def test_nd_sizes_must_multiply_to_the_world_size(cfg_of) -> None:  # type: ignore[no-untyped-def]
    cfg = cfg_of(dp_shard_size=2, dp_replicate_size=2, fsdp_config={})
    assert nd_sizes(cfg, 4) == {"dp_shard_size": 2, "dp_replicate_size": 2, "tensor_parallel_size": 1,
                                "context_parallel_size": 1}
    with pytest.raises(LatheError, match=r"dp_shard_size 2 × dp_replicate_size 2 .* = 4, but the run has 2 processes"):
        check_world(cfg, 2)
    assert nd_sizes(cfg_of(dp_replicate_size=2, fsdp_config={}), 8)["dp_shard_size"] == 4  # unset: the rest
    with pytest.raises(LatheError, match="does not divide the world size"):
        check_world(cfg_of(tensor_parallel_size=3), 4)
    with pytest.raises(LatheError, match="ddp: false"):
        check_world(cfg_of(ddp=False), 2)
    check_world(cfg_of(ddp=False), 1)


def test_nd_parallelism_config_and_gpu_only_sizes(cfg_of, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WORLD_SIZE", "2")
    kwargs = distributed_training_args(cfg_of(dp_shard_size=2, fsdp_config={}))
    assert kwargs["parallelism_config"].dp_shard_size == 2
    with pytest.raises(LatheError, match="dp_shard_size > 1 shards the model with FSDP"):
        distributed_training_args(cfg_of(dp_shard_size=2))
    cfg = cfg_of(context_parallel_size=2, fsdp_config={})
    if torch.cuda.is_available():
        assert distributed_training_args(cfg)["parallelism_config"].cp_size == 2
    else:
        with pytest.raises(LatheError, match="context_parallel_size: tensor and context parallelism run on CUDA GPUs"):
            distributed_training_args(cfg)


def test_fsdp_on_a_cpu_machine_is_fsdp_not_a_silent_ddp() -> None:
    from accelerate.utils import DistributedType

    state = SimpleNamespace(distributed_type=DistributedType.MULTI_CPU, mixed_precision="no")
    trainer = SimpleNamespace(args=SimpleNamespace(fsdp_plugin_args={"fsdp_version": 2}),
                              accelerator=SimpleNamespace(state=state), is_fsdp_enabled=False)
    enable_fsdp_on_cpu(trainer)
    assert state.distributed_type == DistributedType.FSDP and state.fsdp_plugin.fsdp_version == 2
    assert trainer.is_fsdp_enabled
    state.distributed_type = DistributedType.MULTI_CPU
    trainer.args.fsdp_plugin_args = {"fsdp_version": 1}
    with pytest.raises(LatheError, match="fsdp_version: 1 needs GPUs"):
        enable_fsdp_on_cpu(trainer)


def test_qlora_under_fsdp(cfg_of) -> None:  # type: ignore[no-untyped-def]
    from lathe.models.loading import quantization_config

    cfg = cfg_of(adapter="qlora", load_in_4bit=True, fsdp_config={})
    assert quantization_config(cfg).bnb_4bit_quant_storage == torch.float32  # the compute dtype: FSDP shards it
    assert quantization_config(cfg_of(adapter="qlora", load_in_4bit=True)).bnb_4bit_quant_storage == torch.uint8
    if not torch.cuda.is_available():
        with pytest.raises(LatheError, match="QLoRA under FSDP.*needs CUDA GPUs"):
            check_world(cfg, 2)
    check_world(cfg, 1)
    with pytest.raises(ConfigError, match="cpu_ram_efficient_loading is not available with load_in_4bit"):
        cfg_of(adapter="qlora", load_in_4bit=True, fsdp_config={"cpu_ram_efficient_loading": True})
