"""tokenizer_use_mistral_common: the tokenizer loads through mistral-common (a real tekken file
shipped in its wheel), chat rows are its own request encoding, only assistant replies (and the
EOS ending them) are trained, and a short run trains."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

from lathe.config import validate
from lathe.config.load import ConfigError
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training, tiny_model, write_jsonl

mistral_common = pytest.importorskip("mistral_common")

CONVERSATION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "It is 4."},
]


def _tekken() -> Path:
    return Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama whose vocabulary is the tekken tokenizer's, with that tokenizer file beside it."""
    from transformers.tokenization_mistral_common import MistralCommonBackend

    path = tmp_path_factory.mktemp("mistral") / "model"
    path.mkdir()
    shutil.copy(_tekken(), path / "tekken.json")
    tok = MistralCommonBackend.from_pretrained(str(path), local_files_only=True)
    model = tiny_model("llama", tok, hidden_size=16, intermediate_size=32, tie_word_embeddings=True)
    model.save_pretrained(path, safe_serialization=True)
    return path


def _reference_ids(messages: list[dict[str, Any]]) -> list[int]:
    """mistral-common's own encoding of the conversation, without transformers."""
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.validator import ValidationMode
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    tok = MistralTokenizer.from_file(str(_tekken()), mode=ValidationMode.finetuning)
    return list(tok.encode_chat_completion(ChatCompletionRequest.from_openai(messages)).tokens)


def _config(tmp_path: Path, model_dir: Path, **overrides: Any) -> dict[str, Any]:
    data = write_jsonl([{"messages": CONVERSATION}] * 8, tmp_path / "chat.jsonl")
    return base_config(tmp_path, base_model=str(model_dir), tokenizer_use_mistral_common=True,
                       datasets=[{"path": str(data), "type": "chat_template"}], micro_batch_size=2, **overrides)


def test_chat_rows_are_mistral_commons_encoding_with_only_replies_trained(tmp_path: Path, model_dir: Path) -> None:
    from transformers.tokenization_mistral_common import MistralCommonBackend

    from lathe.data.strategies import build_strategy, core_strategies
    from lathe.models.tokenizer import load_tokenizer

    cfg = validate(_config(tmp_path, model_dir), Plugins(), source="<test>")
    tok = load_tokenizer(cfg, Plugins())
    assert isinstance(tok, MistralCommonBackend)
    row = build_strategy(cfg.datasets[0], "datasets[0]", cfg, tok, core_strategies()).tokenize(
        {"messages": CONVERSATION})
    assert row["input_ids"] == _reference_ids(CONVERSATION)
    trained = [i for i, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    eos = tok.eos_token_id
    replies = [tok.encode(m["content"], add_special_tokens=False) for m in CONVERSATION if m["role"] == "assistant"]
    assert trained == [*replies[0], eos, *replies[1], eos]


def test_two_training_steps_with_the_mistral_common_tokenizer(tmp_path: Path, model_dir: Path) -> None:
    import math

    result = run_training(_config(tmp_path, model_dir, max_steps=2))
    assert len(result.losses) == 2 and all(math.isfinite(loss) for loss in result.losses)
    assert (result.output_dir / "tekken.json").exists()  # the tokenizer is saved with the outputs


@pytest.mark.parametrize("key, value", [("chat_template", "chatml"), ("special_tokens", {"pad_token": "<pad>"}),
                                        ("tokens", ["<x>"]), ("eot_tokens", ["</s>"])])
def test_combinations_axolotl_refuses_are_refused(tmp_path: Path, model_dir: Path, key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"{key}: not available with tokenizer_use_mistral_common"):
        validate(_config(tmp_path, model_dir, **{key: value}), Plugins(), source="<test>")


def test_a_dataset_chat_template_is_refused(tmp_path: Path, model_dir: Path) -> None:
    from lathe.data.strategies import build_strategy, core_strategies
    from lathe.models.tokenizer import load_tokenizer

    raw = _config(tmp_path, model_dir)
    raw["datasets"][0]["chat_template"] = "chatml"
    cfg = validate(raw, Plugins(), source="<test>")
    with pytest.raises(LatheError, match="chat_template: not available with tokenizer_use_mistral_common"):
        build_strategy(cfg.datasets[0], "datasets[0]", cfg, load_tokenizer(cfg, Plugins()), core_strategies())


def test_missing_mistral_common_names_the_package(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lathe.models.tokenizer import load_tokenizer

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mistral_common" else real(n, *a))
    cfg = validate(_config(tmp_path, model_dir), Plugins(), source="<test>")
    with pytest.raises(LatheError, match="needs the mistral_common package: pip install mistral-common"):
        load_tokenizer(cfg, Plugins())
