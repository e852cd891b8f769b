"""lathe.models: building the model (dtype, attention, config overrides, weights, vocabulary,
checkpointing), adapters, and the order the model hooks fire in."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lathe.errors import LatheError
from lathe.models.loading import load_model
from lathe.plugins import Plugins
from lathe.testing import tiny_tokenizer
from tests.train.conftest import make_plugins


def _load(cfg, tokenizer=None, plugins=None):  # type: ignore[no-untyped-def]
    return load_model(cfg, tokenizer or tiny_tokenizer(), plugins or Plugins())


def _dtypes(model: torch.nn.Module) -> set[torch.dtype]:
    return {p.dtype for p in model.parameters()}


def test_dtype_follows_bf16_fp16_and_auto(cfg_of) -> None:  # type: ignore[no-untyped-def]
    assert _dtypes(_load(cfg_of(bf16=True))) == {torch.bfloat16}
    assert _dtypes(_load(cfg_of(bf16=False))) == {torch.float32}
    # auto: bf16 only where the hardware supports it (whatever machine runs this test)
    bf16_here = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    assert _dtypes(_load(cfg_of(bf16="auto"))) == {torch.bfloat16 if bf16_here else torch.float32}
    # fp16 keeps trainable full weights in float32 (autocast does the half-precision math)
    assert _dtypes(_load(cfg_of(bf16=False, fp16=True))) == {torch.float32}
    lora = _load(cfg_of(bf16=False, fp16=True, adapter="lora", lora_target_linear=True))
    frozen = {p.dtype for p in lora.parameters() if not p.requires_grad}
    assert frozen == {torch.float16}


def test_attention_backends_and_flash_fallback(cfg_of, capsys) -> None:  # type: ignore[no-untyped-def]
    ids = torch.tensor([[5, 9, 17, 33, 2, 8]])
    eager = _load(cfg_of(attn_implementation="eager"))
    sdpa = _load(cfg_of())
    assert eager.config._attn_implementation == "eager"
    assert sdpa.config._attn_implementation == "sdpa"  # the default
    torch.testing.assert_close(eager(ids).logits, sdpa(ids).logits, rtol=1e-4, atol=1e-5)
    from transformers.utils import is_flash_attn_2_available

    capsys.readouterr()
    flash = _load(cfg_of(flash_attention=True))  # Axolotl's switch
    if is_flash_attn_2_available():  # flash-attn installed on a supported GPU: used as asked
        assert flash.config._attn_implementation == "flash_attention_2"
        assert "unavailable" not in capsys.readouterr().err
    else:
        assert flash.config._attn_implementation == "sdpa"
        assert "flash_attention_2 is unavailable" in capsys.readouterr().err


def test_overrides_of_model_config_reach_the_model(cfg_of) -> None:  # type: ignore[no-untyped-def]
    model = _load(cfg_of(overrides_of_model_config={"rms_norm_eps": 0.125}))
    assert model.config.rms_norm_eps == 0.125
    assert model.model.norm.variance_epsilon == 0.125


def test_random_init_differs_from_pretrained_and_follows_seed(cfg_of) -> None:  # type: ignore[no-untyped-def]
    pretrained = _load(cfg_of()).lm_head.weight
    a = _load(cfg_of(random_init_weights=True, seed=1)).lm_head.weight
    b = _load(cfg_of(random_init_weights=True, seed=1)).lm_head.weight
    c = _load(cfg_of(random_init_weights=True, seed=2)).lm_head.weight
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c) and not torch.equal(a, pretrained)


def test_added_tokens_resize_with_mean_rows_and_pad_id(cfg_of) -> None:  # type: ignore[no-untyped-def]
    tok = tiny_tokenizer(pad_token=False)
    tok.add_special_tokens({"pad_token": "<|newpad|>"})
    tok.add_tokens(["<tool>"])
    before = _load(cfg_of())
    model = _load(cfg_of(), tokenizer=tok)
    old = before.get_input_embeddings().weight.shape[0]
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == len(tok) == old + 2
    assert model.lm_head.weight.shape[0] == len(tok)
    torch.testing.assert_close(emb[old:], emb[:old].mean(0).expand(2, -1))
    torch.testing.assert_close(emb[:old], before.get_input_embeddings().weight)
    assert model.config.pad_token_id == tok.pad_token_id == tok.convert_tokens_to_ids("<|newpad|>")


def test_remote_code_needs_trust_remote_code(tmp_path: Path, cfg_of) -> None:  # type: ignore[no-untyped-def]
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({
        "model_type": "lathe_custom_test",
        "auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XModel"},
    }))
    with pytest.raises(LatheError, match="trust_remote_code: true"):
        _load(cfg_of(base_model=str(custom)))


def test_pickle_weights_refused_unless_allowed(tmp_path: Path, tiny_model_dir: Path, cfg_of) -> None:  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    torch.save(load_file(tiny_model_dir / "model.safetensors"), pickled / "pytorch_model.bin")
    with pytest.raises(LatheError, match="allow_pickle_weights"):
        _load(cfg_of(base_model=str(pickled)))
    model = _load(cfg_of(base_model=str(pickled), allow_pickle_weights=True))
    torch.testing.assert_close(model.lm_head.weight, _load(cfg_of()).lm_head.weight)


def test_gradient_checkpointing_with_kwargs(cfg_of) -> None:  # type: ignore[no-untyped-def]
    model = _load(cfg_of(gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": True}))
    assert model.is_activation_checkpointing
    assert not _load(cfg_of()).is_activation_checkpointing


def test_model_hooks_fire_in_order(cfg_of) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def record(name):  # type: ignore[no-untyped-def]
        def hook(cfg):  # type: ignore[no-untyped-def]
            seen.append(name)
        return hook

    def post_load(cfg, model, tokenizer):  # type: ignore[no-untyped-def]
        seen.append("post_model_load:" + type(model).__name__)

    plugins = make_plugins(
        lathe_post_model_build=record("post_model_build"),
        lathe_pre_adapter_load=record("pre_adapter_load"),
        lathe_post_adapter_load=record("post_adapter_load"),
        lathe_post_model_load=post_load,
    )
    _load(cfg_of(adapter="lora", lora_target_linear=True), plugins=plugins)
    assert seen == ["post_model_build", "pre_adapter_load", "post_adapter_load", "post_model_load:PeftModelForCausalLM"]
    seen.clear()
    _load(cfg_of(), plugins=plugins)
    assert seen == ["post_model_build", "post_model_load:LlamaForCausalLM"]


def test_lora_targets_dora_and_rslora(cfg_of) -> None:  # type: ignore[no-untyped-def]
    model = _load(cfg_of(adapter="lora", lora_r=4, lora_alpha=8, lora_target_modules=["q_proj", "v_proj"]))
    lora_layers = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if "lora_A" in n}
    assert lora_layers == {"q_proj", "v_proj"}
    assert all(not p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    q = model.base_model.model.model.layers[0].self_attn.q_proj
    assert q.scaling["default"] == 8 / 4

    rs = _load(cfg_of(adapter="lora", lora_r=4, lora_alpha=8, lora_target_linear=True, peft_use_rslora=True))
    assert rs.base_model.model.model.layers[0].self_attn.q_proj.scaling["default"] == pytest.approx(8 / math.sqrt(4))
    linear = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in rs.named_parameters() if "lora_A" in n}
    assert linear == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

    dora = _load(cfg_of(adapter="lora", lora_target_linear=True, peft_use_dora=True))
    assert dora.peft_config["default"].use_dora
    assert any("lora_magnitude_vector" in n for n, _ in dora.named_parameters())


def test_lora_with_added_tokens_trains_and_saves_embeddings(cfg_of) -> None:  # type: ignore[no-untyped-def]
    tok = tiny_tokenizer()
    tok.add_tokens(["<tool>"])
    model = _load(cfg_of(adapter="lora", lora_target_linear=True), tokenizer=tok)
    assert set(model.peft_config["default"].modules_to_save) >= {"embed_tokens", "lm_head"}
