"""load_tokenizer: local files offline, added tokens, pad token choice, chat templates, plugin hook."""

from __future__ import annotations

import types
import warnings
from pathlib import Path
from typing import Any

import pytest

from lathe.data.collate import build_collator
from lathe.data.prepare import prepare_datasets
from lathe.data.templates import BUILTINS
from lathe.errors import LatheError
from lathe.hookspecs import hookimpl
from lathe.models.tokenizer import TokenizerWarning, load_tokenizer
from lathe.plugins import Plugins
from lathe.testing import CHATML_TEMPLATE, chat_rows, tiny_tokenizer, write_jsonl


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny_tokenizer(pad_token=False).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def _load(make_cfg: Any, model_dir: Path, plugins: Plugins | None = None, **overrides: Any) -> Any:
    cfg = make_cfg([{"path": "a.jsonl", "type": "alpaca"}], plugins, base_model=str(model_dir), **overrides)
    return load_tokenizer(cfg, plugins or Plugins())


def test_missing_pad_token_gets_a_dedicated_one(make_cfg: Any, model_dir: Path) -> None:
    with pytest.warns(TokenizerWarning, match="no pad token; using '<|pad|>'"):
        tok = _load(make_cfg, model_dir)
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
    assert tok.chat_template == CHATML_TEMPLATE


def test_special_tokens_and_added_tokens(make_cfg: Any, model_dir: Path) -> None:
    tok = _load(make_cfg, model_dir, special_tokens={"pad_token": "<|endoftext|>"}, tokens=["<tool>", "</tool>"])
    assert tok.pad_token == "<|endoftext|>"
    assert len(tok) == 512 + 2 and tok.convert_tokens_to_ids("<tool>") == 512


def test_pad_equal_to_eos_warns_and_the_turn_eos_stays_trained(
    make_cfg: Any, model_dir: Path, tmp_path: Path
) -> None:
    with pytest.warns(TokenizerWarning, match="pad token equals eos token"):
        tok = _load(make_cfg, model_dir, special_tokens={"pad_token": "<|im_end|>"})
    path = write_jsonl(chat_rows(4, turns=1), tmp_path / "c.jsonl")
    cfg = make_cfg([{"path": str(path), "type": "chat_template"}], base_model=str(model_dir))
    data = prepare_datasets(cfg, tok, Plugins())
    batch = build_collator(cfg, tok)([data.train[i] for i in range(4)])
    eos = tok.eos_token_id
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
        real = int(mask.sum())
        last_eos = max(i for i in range(real) if ids[i] == eos)
        assert labels[last_eos] == eos, "the EOS ending the assistant turn must be trained"
        assert (labels[real:] == -100).all() and (ids[real:] == eos).all()


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_template_by_name(make_cfg: Any, model_dir: Path, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TokenizerWarning)
        tok = _load(make_cfg, model_dir, chat_template=name)
    assert tok.chat_template == BUILTINS[name].text


def test_axolotl_name_resolves_to_its_builtin(make_cfg: Any, model_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TokenizerWarning)
        tok = _load(make_cfg, model_dir, chat_template="qwen_25")
    assert tok.chat_template == BUILTINS["qwen2_5"].text


def test_builtin_that_renders_differently_from_the_tokenizers_warns_with_the_first_difference(
    make_cfg: Any, model_dir: Path
) -> None:
    with pytest.warns(TokenizerWarning) as caught:
        _load(make_cfg, model_dir, chat_template="qwen2_5")
    [message] = [str(w.message) for w in caught if "chat_template" in str(w.message)]
    assert "qwen2_5 replaces the tokenizer's own template, and renders conversations differently: one turn, " \
           "character 12: built-in " in message
    assert "system\\nYou are Qwen" in message and "vs the tokenizer's '<|im_start|>user" in message


def test_builtin_that_renders_like_the_tokenizers_does_not_warn(make_cfg: Any, model_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", TokenizerWarning)
        tok = _load(make_cfg, model_dir, chat_template="chatml", special_tokens={"pad_token": "<|pad|>"})
    assert tok.chat_template == BUILTINS["chatml"].text


def test_jinja_template(make_cfg: Any, model_dir: Path) -> None:
    with pytest.warns(TokenizerWarning):
        tok = _load(make_cfg, model_dir, chat_template="jinja", chat_template_jinja="{{ messages[0]['content'] }}")
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == "hi"


def test_template_errors(make_cfg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bare = tmp_path / "bare"
    tiny_tokenizer(chat_template=False).save_pretrained(bare)
    with pytest.raises(LatheError, match="tokenizer_default, but the tokenizer has no chat template"):
        _load(make_cfg, bare, chat_template="tokenizer_default")
    with pytest.raises(LatheError, match="unknown template 'chatlm'; did you mean 'chatml'"):
        _load(make_cfg, bare, chat_template="chatlm")
    with pytest.raises(LatheError, match="'qwen' is not supported: ambiguous .* name qwen2, qwen2_5 or qwen3"):
        _load(make_cfg, bare, chat_template="qwen")
    with pytest.raises(LatheError, match="llava is a vision-language template: it needs a vision-language base_model"):
        _load(make_cfg, bare, chat_template="llava")


def test_unloadable_tokenizer_names_the_key(make_cfg: Any, model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(LatheError, match="tokenizer_config: cannot load a tokenizer from"):
        _load(make_cfg, model_dir, tokenizer_config=str(tmp_path / "empty-dir-that-is-not-there"))


def test_post_tokenizer_load_hook_fires_last(make_cfg: Any, model_dir: Path) -> None:
    seen = {}

    @hookimpl
    def lathe_post_tokenizer_load(cfg: Any, tokenizer: Any) -> None:
        seen["pad"] = tokenizer.pad_token
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|mask|>"]})

    plugins = Plugins.from_modules({"masker": types.SimpleNamespace(lathe_post_tokenizer_load=lathe_post_tokenizer_load)})
    with pytest.warns(TokenizerWarning):
        tok = _load(make_cfg, model_dir, plugins)
    assert seen["pad"] == "<|pad|>" and "<|mask|>" in tok.get_vocab()


def test_tokenizer_type_picks_the_class_and_hub_token_is_passed(
    make_cfg: Any, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    seen: dict[str, Any] = {}
    original = transformers.PreTrainedTokenizerFast.from_pretrained.__func__  # type: ignore[attr-defined]

    def spy(cls: type, *args: Any, **kwargs: Any) -> Any:
        seen.update(cls=cls, token=kwargs.get("token"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.PreTrainedTokenizerFast, "from_pretrained", classmethod(spy))
    with pytest.warns(TokenizerWarning):
        tok = _load(make_cfg, model_dir, tokenizer_type="PreTrainedTokenizerFast", hub_token="hf_x")
    assert type(tok) is transformers.PreTrainedTokenizerFast
    assert seen == {"cls": transformers.PreTrainedTokenizerFast, "token": "hf_x"}
    with pytest.raises(LatheError, match="tokenizer_type: 'LlamaForCausalLM' is not a tokenizer class"):
        _load(make_cfg, model_dir, tokenizer_type="LlamaForCausalLM")
