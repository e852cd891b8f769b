"""deepspeed / deepcompile / use_ray keys: what they resolve to and how bad values fail.
These need neither DeepSpeed nor Ray installed (the runs are in test_deepspeed.py, test_ray.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lathe.config import ConfigError
from lathe.errors import LatheError
from lathe.train.args import training_arguments_dict
from lathe.train.deepspeed import deepspeed_config, require_deepspeed, shipped_names, zero_stage


def test_shipped_configs_are_the_zero_stages_by_name(cfg_of) -> None:  # type: ignore[no-untyped-def]
    names = shipped_names()
    assert {"zero1", "zero2", "zero3", "zero3_bf16", "zero3_bf16_cpuoffload_all", "zero3_bf16_cpuoffload_params"} <= set(names)
    for name in names:
        config = deepspeed_config(cfg_of(deepspeed=name))
        assert zero_stage(config) == int(name[4]), name
        if zero_stage(config) == 3:  # the final save is a loadable HF model
            assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert "offload_param" in deepspeed_config(cfg_of(deepspeed="zero3_bf16_cpuoffload_params"))["zero_optimization"]
    # Axolotl's spelling of the same file (its repo folder) finds the shipped copy
    assert deepspeed_config(cfg_of(deepspeed="deepspeed_configs/zero2.json")) == deepspeed_config(cfg_of(deepspeed="zero2"))


def test_a_path_and_a_mapping_are_read_and_reach_the_training_arguments(cfg_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mine = {"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto"}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(mine))
    assert deepspeed_config(cfg_of(deepspeed=str(path))) == mine
    assert deepspeed_config(cfg_of(deepspeed=mine)) == mine
    assert training_arguments_dict(cfg_of(deepspeed=str(path)), 32, False)["deepspeed"] == mine
    assert "deepspeed" not in training_arguments_dict(cfg_of(), 32, False)


def test_deepcompile_adds_the_compile_section_unless_there_is_one(cfg_of) -> None:  # type: ignore[no-untyped-def]
    assert deepspeed_config(cfg_of(deepspeed="zero3", deepcompile=True))["compile"] == {"deepcompile": True}
    assert "compile" not in deepspeed_config(cfg_of(deepspeed="zero3"))
    own = {"zero_optimization": {"stage": 3}, "compile": {"deepcompile": False}}
    assert deepspeed_config(cfg_of(deepspeed=own, deepcompile=True))["compile"] == {"deepcompile": False}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"deepspeed": "zero4"}, r"deepspeed: given 'zero4': no file 'zero4', and not the name of a shipped DeepSpeed config \(zero1, .*zero3"),
    ({"deepspeed": "/no/such/ds.json"}, r"deepspeed.*no file '/no/such/ds.json'"),
    ({"deepcompile": True}, r"deepcompile: DeepCompile runs inside DeepSpeed"),
    ({"deepspeed": "zero2", "optimizer": "muon"}, r"deepspeed: the muon optimizer"),
    ({"ray_num_workers": 2}, r"ray_num_workers: set use_ray: true"),
    ({"resources_per_worker": {"CPU": 1}, "ray_run_name": "x"}, r"ray_run_name, resources_per_worker: set use_ray"),
])
def test_bad_engine_keys_are_clear_errors(cfg_of, overrides, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        cfg_of(**overrides)


def test_missing_extras_name_what_to_install(cfg_of, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] in ("deepspeed", "ray") else real(name, *a))
    with pytest.raises(LatheError, match=r"deepspeed: DeepSpeed is not installed: pip install 'lathe\[deepspeed\]'"):
        require_deepspeed()
    from lathe.train.ray import train_with_ray

    with pytest.raises(LatheError, match=r"use_ray: Ray Train is not installed: pip install 'lathe\[ray\]'"):
        train_with_ray(cfg_of(use_ray=True), None)  # type: ignore[arg-type]


def test_ray_worker_resources_default_to_the_machine(cfg_of) -> None:  # type: ignore[no-untyped-def]
    import torch

    from lathe.train.ray import resources

    assert resources(cfg_of(use_ray=True, resources_per_worker={"CPU": 2})) == {"CPU": 2}
    assert resources(cfg_of(use_ray=True)) == ({"GPU": 1} if torch.cuda.is_available() else {"CPU": 1})
