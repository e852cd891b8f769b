"""What the torchao keys refuse, each with a message naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lathe.config import ConfigError, validate
from lathe.plugins import Plugins
from lathe.testing import base_config

SCHEME = {"weight_dtype": "int4", "activation_dtype": "int8"}


def _validate(tmp_path: Path, **keys: Any) -> Any:
    return validate({**base_config(tmp_path), "plugins": ["torchao"], **keys}, Plugins.load(["torchao"]))


@pytest.mark.parametrize(("keys", "message"), [
    ({"qat": {**SCHEME}, "adapter": "lora"}, "qat: trains the full model; it cannot be combined with adapter: lora"),
    ({"qat": {}}, "weight_dtype: int8 with activation_dtype: None is not a layout"),
    ({"quantization": {"weight_dtype": "nvfp4"}}, "weight_dtype: nvfp4 is not available in lathe yet"),
    ({"qat": {"weight_dtype": "fp8", "activation_dtype": "fp8", "group_size": 64}}, "group_size applies to int4"),
    ({"quantization": {"weight_dtype": "fp8", "activation_dtype": "fp8", "quantize_embedding": True}},
     "quantize_embedding needs weight_dtype: int4"),
    ({"fp8_config": {"recipe": "rowwise"}}, "fp8_config requires fp8: true"),
    ({"fp8": True, "fp8_enable_fsdp_float8_all_gather": True},
     "fp8_enable_fsdp_float8_all_gather requires FSDP2 (fsdp_config with fsdp_version: 2)"),
    ({"fp8": True, "fp8_enable_fsdp_float8_all_gather": True, "fsdp_version": 1,
      "fsdp_config": {"auto_wrap_policy": "TRANSFORMER_BASED_WRAP"}},
     "fp8_enable_fsdp_float8_all_gather requires FSDP2 (fsdp_config with fsdp_version: 2)"),
    ({"fp8": True, "fp8_config": {"recipe": "rowwise"}, "fp8_enable_fsdp_float8_all_gather": True},
     "only works with fp8_config.recipe: tensorwise"),
    ({"fp8": True, "qat": {**SCHEME}}, "qat and fp8 cannot be combined"),
])
def test_refused(tmp_path: Path, keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _validate(tmp_path, **keys)
    assert message in str(info.value)


def test_axolotl_spellings_and_defaults(tmp_path: Path) -> None:
    cfg = _validate(tmp_path, qat={"weight_dtype": "int4", "activation_dtype": "float8", "fake_quant_after_n_steps": 3})
    assert (cfg.qat.weight_dtype, cfg.qat.activation_dtype) == ("int4", "float8_e4m3fn")
    assert (cfg.qat.group_size, cfg.qat.quantize_embedding, cfg.qat.fake_quant_after_n_steps) == (32, False, 3)


def test_fsdp_float8_all_gather_with_fsdp2(tmp_path: Path) -> None:
    cfg = _validate(tmp_path, fp8=True, fp8_enable_fsdp_float8_all_gather=True,
                    fsdp_config={"auto_wrap_policy": "TRANSFORMER_BASED_WRAP"})
    assert cfg.fp8_enable_fsdp_float8_all_gather is True


def test_a_torchao_key_in_a_yaml_file_enables_the_plugin(tmp_path: Path) -> None:
    import yaml

    from lathe.config import load_config

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**base_config(tmp_path), "fp8": True}))
    cfg, plugins = load_config(path)
    assert cfg.fp8 is True and "torchao" in plugins.infos
