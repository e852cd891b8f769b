"""chat_template masks: exact turn boundaries, roles, EOS policies, built-in and rewriting templates."""

from __future__ import annotations

from typing import Any

import pytest

from lathe.data.strategies import build_strategy, core_strategies
from lathe.data.templates import BUILTINS
from lathe.errors import LatheError

from .helpers import trained_runs

CONVO = {"messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Uppercase: red cat"},
    {"role": "assistant", "content": "RED CAT"},
    {"role": "user", "content": "Uppercase: blue dog"},
    {"role": "assistant", "content": "BLUE DOG"},
]}

# Drops the reasoning of every assistant turn but the last (as Qwen3's template does),
# so rendering a prefix of the conversation is NOT a prefix of the full render.
REWRITING = (
    "{% for m in messages %}{% set c = m['content'] %}"
    "{% if m['role'] == 'assistant' and not loop.last %}{% set c = c.split('</think>')[-1] %}{% endif %}"
    "{{ '<|im_start|>' + m['role'] + '\n' + c + '<|im_end|>\n' }}{% endfor %}"
)


def chat(make_cfg: Any, tok: Any, example: dict[str, Any] | None = None, **entry: Any) -> dict[str, list[int]]:
    cfg_keys = {k: entry.pop(k) for k in ("train_on_inputs", "default_system_message", "system_message_handling")
                if k in entry}
    cfg = make_cfg([{"path": "unused.jsonl", "type": "chat_template", **entry}], **cfg_keys)
    s = build_strategy(cfg.datasets[0], "datasets[0]", cfg, tok, core_strategies())
    return s.tokenize(example or CONVO)


def test_assistant_turns_and_their_eos_are_trained(make_cfg: Any, tok: Any) -> None:
    assert trained_runs(chat(make_cfg, tok), tok) == ["RED CAT<|im_end|>", "BLUE DOG<|im_end|>"]


@pytest.mark.parametrize(("mode", "expected"), [
    ("turn", ["RED CAT<|im_end|>", "BLUE DOG<|im_end|>"]),
    ("last", ["RED CAT", "BLUE DOG<|im_end|>"]),
    ("none", ["RED CAT", "BLUE DOG"]),
    ("all", ["<|im_end|>", "<|im_end|>", "RED CAT<|im_end|>", "<|im_end|>", "BLUE DOG<|im_end|>"]),
])
def test_train_on_eos(make_cfg: Any, tok: Any, mode: str, expected: list[str]) -> None:
    assert trained_runs(chat(make_cfg, tok, train_on_eos=mode), tok) == expected


def test_roles_to_train(make_cfg: Any, tok: Any) -> None:
    runs = trained_runs(chat(make_cfg, tok, roles_to_train=["user"]), tok)
    assert runs == ["Uppercase: red cat<|im_end|>", "Uppercase: blue dog<|im_end|>"]


def test_train_on_inputs_trains_every_turns_content_not_the_template(make_cfg: Any, tok: Any) -> None:
    ex = chat(make_cfg, tok, train_on_inputs=True)
    assert trained_runs(ex, tok) == ["You are terse.<|im_end|>", "Uppercase: red cat<|im_end|>", "RED CAT<|im_end|>",
                                     "Uppercase: blue dog<|im_end|>", "BLUE DOG<|im_end|>"]


def test_property_mappings_and_roles(make_cfg: Any, tok: Any) -> None:
    row = {"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "HELLO"}]}
    ex = chat(make_cfg, tok, row, field_messages="conversations",
              message_property_mappings={"role": "from", "content": "value"},
              roles={"user": ["human"], "assistant": ["bot"]})
    assert tok.decode(ex["input_ids"]).startswith("<|im_start|>user\nhi<|im_end|>")
    assert trained_runs(ex, tok) == ["HELLO<|im_end|>"]


def test_roles_replace_the_default_mapping(make_cfg: Any, tok: Any) -> None:
    """As in Axolotl, a roles mapping is the whole mapping: 'human' is no longer read as 'user'."""
    row = {"messages": [{"role": "human", "content": "hi"}, {"role": "bot", "content": "HELLO"}]}
    ex = chat(make_cfg, tok, row, roles={"assistant": ["bot"]})
    assert tok.decode(ex["input_ids"]).startswith("<|im_start|>human\nhi<|im_end|>")


def test_default_system_message(make_cfg: Any, tok: Any) -> None:
    row = {"messages": CONVO["messages"][1:3]}
    ex = chat(make_cfg, tok, row, default_system_message="Be kind.")
    assert tok.decode(ex["input_ids"]).startswith("<|im_start|>system\nBe kind.<|im_end|>")


def test_template_that_rewrites_earlier_turns_is_masked_exactly(make_cfg: Any, tok: Any) -> None:
    row = {"messages": [
        {"role": "user", "content": "Uppercase: red"},
        {"role": "assistant", "content": "<think>easy</think>RED"},
        {"role": "user", "content": "Uppercase: dog"},
        {"role": "assistant", "content": "<think>again</think>DOG"},
    ]}
    ex = chat(make_cfg, tok, row, chat_template="jinja", chat_template_jinja=REWRITING)
    text = tok.decode(ex["input_ids"])
    assert "easy" not in text and "<think>again</think>DOG" in text
    assert trained_runs(ex, tok) == ["RED<|im_end|>", "<think>again</think>DOG<|im_end|>"]


@pytest.mark.parametrize("name", sorted(BUILTINS))
@pytest.mark.parametrize("mode", ["none", "turn"])
def test_builtin_templates_train_exactly_the_assistant_contents(make_cfg: Any, tok: Any, name: str, mode: str) -> None:
    fold = {} if BUILTINS[name].system else {"system_message_handling": "fold"}
    ex = chat(make_cfg, tok, chat_template=name, train_on_eos=mode, **fold)
    text = tok.decode(ex["input_ids"])
    assert "RED CAT" in text and "And blue dog?" not in text and "Uppercase: blue dog" in text
    runs = trained_runs(ex, tok)
    # exaone4 writes its empty think block only before a non-empty answer, so emptying the answer
    # to find it removes the block too: it is trained with the answer (as the model emits it).
    runs = [r.removeprefix("<think>\n\n</think>\n\n") if name == "exaone4" else r for r in runs]
    assert [r.strip().removesuffix(tok.eos_token) for r in runs] == ["RED CAT", "BLUE DOG"], runs
    if mode == "none":
        assert tok.eos_token not in "".join(runs)


def test_phi_4_formats_train_their_own_turn_end_by_default(make_cfg: Any) -> None:
    from lathe.testing import tiny_tokenizer

    phi_4 = tiny_tokenizer()  # EOS <|im_end|>, as phi-4's tokenizer: it closes every turn
    assert trained_runs(chat(make_cfg, phi_4, chat_template="phi_4"), phi_4) == ["RED CAT<|im_end|>",
                                                                               "BLUE DOG<|im_end|>"]
    mini = tiny_tokenizer(eos_token="<|endoftext|>")  # Phi-4-mini: EOS <|endoftext|>, turns end with <|end|>
    mini.add_special_tokens({"additional_special_tokens": ["<|end|>"]})
    assert trained_runs(chat(make_cfg, mini, chat_template="phi_4_mini"), mini) == [
        "RED CAT<|end|>", "BLUE DOG<|end|><|endoftext|>"]


def test_a_system_message_the_family_refuses_is_refused_naming_the_row(make_cfg: Any, tok: Any) -> None:
    with pytest.raises(LatheError, match="the chat template refuses this conversation: gemma: Gemma 1 and 2 have no "
                                         "system role; set system_message_handling: fold"):
        chat(make_cfg, tok, chat_template="gemma")


def test_system_message_handling_fold_prepends_it_to_the_first_user_message(make_cfg: Any, tok: Any) -> None:
    ex = chat(make_cfg, tok, chat_template="gemma", system_message_handling="fold")
    assert tok.decode(ex["input_ids"]).startswith("<start_of_turn>user\nYou are terse.\n\nUppercase: red cat<end")
    ex = chat(make_cfg, tok, chat_template="chatml", system_message_handling="fold")
    assert tok.decode(ex["input_ids"]).startswith("<|im_start|>user\nYou are terse.\n\nUppercase: red cat<|im_end|>")


def test_a_refused_row_is_named_when_the_dataset_is_prepared(make_cfg: Any, tok: Any, tmp_path: Any) -> None:
    from lathe.data.prepare import prepare_datasets
    from lathe.plugins import Plugins
    from lathe.testing import write_jsonl

    rows = [{"messages": CONVO["messages"][1:3]}, {"messages": CONVO["messages"][1:3]}, CONVO]
    path = write_jsonl(rows, tmp_path / "chat.jsonl")
    cfg = make_cfg([{"path": str(path), "type": "chat_template", "chat_template": "gemma"}],
                   dataset_prepared_path=str(tmp_path / "prepared"))
    with pytest.raises(LatheError, match=r"datasets\[0\] row 2: the chat template refuses this conversation: gemma: "):
        prepare_datasets(cfg, tok, Plugins())
