"""`lathe inference` with a diffusion model: prompt commands and the lathe_generate answer."""

import pytest
import torch

from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import tiny_model, tiny_tokenizer
from lathe_diffusion import plugin
from lathe_diffusion.config import DiffusionSection
from lathe_diffusion.infer import complete_command, fill, mask_command


class _Cfg:
    def __init__(self, **kw):  # type: ignore[no-untyped-def]
        self.diffusion = DiffusionSection(**kw)


def _setup(**kw):  # type: ignore[no-untyped-def]
    cfg = _Cfg(**kw)
    tok = tiny_tokenizer()
    plugin.lathe_post_tokenizer_load(cfg, tok)
    model = tiny_model("llama", tok).eval()
    return cfg, tok, model


def test_mask_token_is_added_once() -> None:
    cfg, tok, _ = _setup()
    size = len(tok)
    assert "<|mask|>" in tok.get_vocab() and tok.convert_tokens_to_ids("<|mask|>") in tok.all_special_ids
    plugin.lathe_post_tokenizer_load(cfg, tok)
    assert len(tok) == size


def test_generation_lengths_follow_settings_and_commands() -> None:
    cfg, tok, model = _setup(generation_max_length=7, generation_steps=3)
    calls = []
    real = model.forward

    def counting(*a, **k):  # type: ignore[no-untyped-def]
        calls.append(k["input_ids"].shape[1])
        return real(*a, **k)

    model.forward = counting  # type: ignore[method-assign]
    prompt_len = len(tok("red green", add_special_tokens=False)["input_ids"])
    fill(cfg.diffusion, model, tok, "red green")
    assert calls == [prompt_len + 7] * 3  # generation_max_length new tokens, generation_steps passes
    calls.clear()
    commands = plugin.lathe_inference_commands(cfg)
    commands["complete"](model, tok, "4 red green")
    assert calls == [prompt_len + 4] * 3
    calls.clear()
    out = fill(cfg.diffusion, model, tok, "red <|mask|> blue")
    assert len(calls) == 1 and "<|mask|>" not in out  # one masked token: done after one pass
    out = commands["mask"](model, tok, "0.5 red green blue cat dog bird")
    assert out.startswith("masked:") and "<|mask|>" in out.splitlines()[0] and "<|mask|>" not in out.splitlines()[1]


def test_bad_command_arguments_are_clear_errors() -> None:
    cfg, tok, model = _setup()
    for call, needle in [(complete_command, "whole number"), (mask_command, "0 < R <= 1")]:
        with pytest.raises(LatheError, match=needle):
            call(cfg.diffusion, model, tok, "x some text")
    with pytest.raises(LatheError, match="usage"):
        complete_command(cfg.diffusion, model, tok, "")


def test_inference_finds_the_plugin_through_the_contract() -> None:
    cfg, tok, model = _setup(generation_max_length=3, generation_steps=3)
    plugins = Plugins.from_modules({"diffusion": plugin})
    text = plugins.call("lathe_generate", cfg=cfg, model=model, tokenizer=tok, prompt="red")
    assert isinstance(text, str)


def test_temperature_setting_is_used() -> None:
    cfg, tok, model = _setup(generation_max_length=12, generation_steps=4, generation_temperature=5.0)
    outs = {fill(cfg.diffusion, model, tok, "red", generator=torch.Generator().manual_seed(s)) for s in range(3)}
    assert len(outs) > 1
    cold = _Cfg(generation_max_length=12, generation_steps=4).diffusion
    assert len({fill(cold, model, tok, "red", generator=torch.Generator().manual_seed(s)) for s in range(3)}) == 1
