"""``chat_template`` datasets encoded by mistral-common (``tokenizer_use_mistral_common``).

mistral-common has no Jinja template: its request encoding (``encode_chat_completion``, reached
through transformers' ``MistralCommonBackend.apply_chat_template``) is the template, and may move
turns (a system prompt goes into the last user turn). The turns are masked as
:class:`~lathe.data.strategies.chat.ChatTemplateStrategy` masks them, on tokens: the
conversation is encoded again with the turn's content replaced by each of two placeholders, and
the tokens that differ are that turn's content. EOS ends every assistant turn (mistral-common has
no other end-of-turn token), trained per ``train_on_eos``.
"""

from __future__ import annotations

from typing import Any

from lathe.data.strategies.chat import PLACEHOLDERS, ChatTemplateStrategy, diff_span
from lathe.errors import LatheError


class MistralCommonChatStrategy(ChatTemplateStrategy):
    """Conversations encoded by the mistral-common tokenizer, masked per turn."""

    def _resolve_template(self, options: dict[str, Any]) -> str:
        given = [k for k in ("chat_template", "chat_template_jinja") if options[k] is not None]
        if given:
            raise LatheError(f"{', '.join(given)}: not available with tokenizer_use_mistral_common "
                             "(mistral-common's request encoding is the chat template)")
        if options["train_on_eot"] is not None and options["train_on_eot"] != (options["train_on_eos"] or "turn"):
            raise LatheError("train_on_eot: with tokenizer_use_mistral_common EOS is the only end-of-turn token; "
                             "set train_on_eos instead")
        return ""

    def _eot_ids(self) -> set[int]:
        return {int(self.tokenizer.eos_token_id)}

    def render_text(self, turns: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        return ""  # never decoded to text: the tokenizer has no offsets, so the masking works on tokens

    def render(self, turns: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[int]:
        from mistral_common.exceptions import MistralCommonException
        from pydantic import ValidationError

        try:
            ids = self.tokenizer.apply_chat_template(turns, tools=tools, tokenize=True, return_dict=False)
        except (MistralCommonException, ValidationError, ValueError) as exc:
            raise LatheError(f"mistral-common refuses this conversation: {exc}".splitlines()[0]) from None
        return [int(i) for i in ids]

    def content_span(self, turns: list[dict[str, Any]], i: int, full: str, starts: list[int], ends: list[int],
                     ids: list[int], tools: list[dict[str, Any]] | None = None) -> tuple[int, int] | None:
        spans = [diff_span(ids, self.render(self._placeholder(turns, i, p), tools)) for p in PLACEHOLDERS]
        start, end = min(s for s, _ in spans), max(e for _, e in spans)
        return (start, end) if end > start else None
