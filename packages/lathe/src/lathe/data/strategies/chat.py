"""Conversations rendered by a chat template, with exact per-turn label masks.

Turn boundaries are found by diffing tokens, never by assuming that rendering a prefix
of the conversation gives a prefix of the tokens: for each trained message the whole
conversation is rendered again with that message's content emptied, and the tokens
where the two renders differ (after the longest common prefix, before the longest
common suffix) are that message's content in the full render. Templates that rewrite
earlier turns (dropping reasoning, moving the system prompt, marking the last turn)
are therefore masked exactly as the model will see them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from lathe.data.strategies import IGNORE, Example, PromptStrategy
from lathe.data.templates import resolve_chat_template
from lathe.errors import LatheError

DEFAULT_ROLES: dict[str, list[str]] = {
    "system": ["system"],
    "user": ["user", "human"],
    "assistant": ["assistant", "gpt", "model"],
    "tool": ["tool"],
}
TrainOnEos = Literal["all", "turn", "last", "none"]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def content_span(full: list[int], emptied: list[int]) -> tuple[int, int]:
    """[start, end) of the tokens of ``full`` that differ from ``emptied`` (one message's content)."""
    start = _common_prefix(full, emptied)
    limit = min(len(full), len(emptied)) - start
    suffix = _common_prefix(full[::-1], emptied[::-1])
    return start, len(full) - min(suffix, limit)


def fold_system_message(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``system_message_handling: fold``: a leading system message prepended to the first user message."""
    if not messages or messages[0]["role"] != "system":
        return messages
    system, rest = messages[0], messages[1:]
    for i, message in enumerate(rest):
        if message["role"] == "user":
            folded = {**message, "content": f"{system['content']}\n\n{message['content']}"}
            return [*rest[:i], folded, *rest[i + 1 :]]
    raise LatheError("system_message_handling: fold, but the conversation has no user message to fold the "
                     "system message into")


class ChatTemplateStrategy(PromptStrategy):
    """``messages`` lists rendered with the tokenizer's (or a named) chat template."""

    keys: ClassVar[dict[str, Any]] = {
        "field_messages": "messages",
        "message_property_mappings": {"role": "role", "content": "content"},
        "roles": None,
        "roles_to_train": ["assistant"],
        "train_on_eos": "turn",
        "chat_template": None,
        "chat_template_jinja": None,
        "drop_system_message": False,
    }
    renamed: ClassVar[dict[str, str]] = {
        "message_field_role": "message_property_mappings.role",
        "message_field_content": "message_property_mappings.content",
        "field_human": "roles.user",
        "field_model": "roles.assistant",
        "field_system": "roles.system",
    }

    def __init__(self, cfg: Any, tokenizer: Any, options: dict[str, Any]):
        super().__init__(cfg, tokenizer, options)
        own = resolve_chat_template(options["chat_template"], options["chat_template_jinja"], tokenizer.chat_template)
        if not own:
            raise LatheError("chat_template strategy: the tokenizer has no chat template; set chat_template "
                             "(a built-in such as chatml, llama3_1, qwen2_5, mistral_v3, gemma3; or jinja)")
        self.template = own
        if options["train_on_eos"] not in ("all", "turn", "last", "none"):
            raise LatheError(f"train_on_eos: {options['train_on_eos']!r} is not one of all, turn, last, none")
        self.role_of = self._role_lookup(options["roles"])
        mapping = {"role": "role", "content": "content", **(options["message_property_mappings"] or {})}
        self.role_key, self.content_key = mapping["role"], mapping["content"]

    @staticmethod
    def _role_lookup(roles: dict[str, Any] | None) -> dict[str, str]:
        merged = {**DEFAULT_ROLES, **{k: [v] if isinstance(v, str) else list(v) for k, v in (roles or {}).items()}}
        return {source: target for target, sources in merged.items() for source in sources}

    def messages(self, row: dict[str, Any]) -> list[dict[str, str]]:
        out = []
        for message in self.field(row, self.options["field_messages"]):
            raw_role = message.get(self.role_key)
            if raw_role is None or message.get(self.content_key) is None:
                missing = self.role_key if raw_role is None else self.content_key
                raise LatheError(f"a message has no {missing!r} (message_property_mappings names the keys)")
            role = self.role_of.get(raw_role, raw_role)
            if role == "system" and self.options["drop_system_message"]:
                continue
            out.append({"role": role, "content": str(message[self.content_key])})
        system = self.cfg.default_system_message
        if system and (not out or out[0]["role"] != "system"):
            out.insert(0, {"role": "system", "content": system})
        if self.cfg.system_message_handling == "fold":
            out = fold_system_message(out)
        return out

    def render(self, messages: list[dict[str, str]]) -> list[int]:
        from jinja2.exceptions import TemplateError

        try:
            text = self.tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False)
        except TemplateError as exc:  # the template's own raise_exception: a conversation its family refuses
            raise LatheError(f"the chat template refuses this conversation: {exc}") from None
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _turn_end(self, full: list[int], end: int) -> int | None:
        """Position of the token closing a turn: EOS or a special token right after the content."""
        if end < len(full) and (full[end] == self.tokenizer.eos_token_id or full[end] in self.tokenizer.all_special_ids):
            return end
        return None

    def tokenize(self, row: dict[str, Any]) -> Example:
        messages = self.messages(row)
        full = self.render(messages)
        if self.cfg.train_on_inputs:
            return {"input_ids": full, "labels": list(full)}
        labels = [IGNORE] * len(full)
        ends: list[int] = []
        trained_roles = set(self.options["roles_to_train"] or [])
        for i, message in enumerate(messages):
            if message["role"] not in trained_roles:
                continue
            emptied = [*messages[:i], {**message, "content": ""}, *messages[i + 1 :]]
            start, end = content_span(full, self.render(emptied))
            labels[start:end] = full[start:end]
            turn_end = self._turn_end(full, end)
            if turn_end is not None:
                ends.append(turn_end)
        mode = self.options["train_on_eos"]
        if mode == "all":
            ends += [j for j, t in enumerate(full) if t == self.tokenizer.eos_token_id]
        elif mode == "last":
            ends = ends[-1:]
        elif mode == "none":
            ends = []
        for j in ends:
            labels[j] = full[j]
        return {"input_ids": full, "labels": labels}
