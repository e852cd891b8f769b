"""Where a built-in template and a tokenizer's own template render a conversation differently.

A few probe conversations (with and without a system message, several turns, a generation
prompt, contents with surrounding spaces and newlines) are rendered by both through the
tokenizer's ``apply_chat_template``; the first difference is described in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_U1 = {"role": "user", "content": "What is 2 + 2?"}
_A1 = {"role": "assistant", "content": "4"}
_U2 = {"role": "user", "content": "  And 3 + 3?\nShow it.  "}
_A2 = {"role": "assistant", "content": "\n 6 \n"}
_SYSTEM = {"role": "system", "content": "You are a calculator."}

PROBES: dict[str, tuple[list[dict[str, str]], bool]] = {
    "one turn": ([_U1, _A1], False),
    "two turns with spaces and newlines": ([_U1, _A1, _U2, _A2], False),
    "with a system message": ([_SYSTEM, _U1, _A1], False),
    "a generation prompt": ([_U1], True),
}
_CONTEXT = 30


def _render(tok: PreTrainedTokenizerBase, template: str, messages: list[dict[str, str]], prompt: bool) -> str:
    """The rendered text, or ``<refused: …>`` where the template raises."""
    try:
        text: Any = tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                            add_generation_prompt=prompt)
    except Exception as exc:  # a template's own refusal, or an error of a foreign template's code
        return f"<refused: {exc}>"
    return str(text)


def first_difference(tok: PreTrainedTokenizerBase, ours: str, theirs: str) -> str | None:
    """One line naming the first probe conversation the two templates render differently, or None."""
    for label, (messages, prompt) in PROBES.items():
        a, b = _render(tok, ours, messages, prompt), _render(tok, theirs, messages, prompt)
        if a == b:
            continue
        at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        start = max(0, at - _CONTEXT)
        return (f"{label}, character {at}: built-in {a[start:at + _CONTEXT]!r} vs the tokenizer's "
                f"{b[start:at + _CONTEXT]!r}")
    return None
