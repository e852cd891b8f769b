"""Conversations rendered by a chat template, masked per turn with Axolotl's meanings.

A turn is trained when its role is in ``roles_to_train``, when ``train_on_inputs`` is set
(every turn), or when its ``message_field_training`` flag says so. A trained turn's
*content* is trained, never the template's own tokens around it (role headers,
separators). The content is located in the rendered text, never by assuming that
rendering a prefix of the conversation gives a prefix of the tokens: the conversation is
rendered again with that turn's content replaced by a placeholder (twice, with two
placeholders whose first and last characters differ), and the characters where the
renders differ are that turn's content; the tokens covering them are its span. Templates
that rewrite earlier turns are therefore masked exactly as the model will see them.

After each turn the first end-of-turn token (``eot_tokens``) and the first EOS within
three tokens of the content's end are found; ``train_on_eot`` and ``train_on_eos``
(``all`` | ``turn`` | ``last`` | ``none``) decide whether they are trained.
"""

from __future__ import annotations

import json
import warnings
from bisect import bisect_left, bisect_right
from typing import Any, ClassVar, Literal

from lathe.data.strategies import IGNORE, Example, PromptStrategy
from lathe.data.templates import resolve_chat_template
from lathe.errors import LatheError

DEFAULT_ROLES: dict[str, list[str]] = {
    "system": ["system"],
    "user": ["user", "human"],
    "assistant": ["assistant", "gpt"],
    "tool": ["tool"],
}
TrainOnEos = Literal["all", "turn", "last", "none"]
MODES = ("all", "turn", "last", "none")
PLACEHOLDERS = ("<<lathe placeholder>>", "qqlatheplaceholderqq")  # edge characters differ between the two
END_WINDOW = 3  # an end-of-turn token counts for a turn when it is at most this many tokens after its content
SYSTEM_COLUMN = "system"


class TemplateWarning(UserWarning):
    """A chat template whose turn ends will not be trained as configured."""


def _common_prefix(a: Any, b: Any, limit: int) -> int:
    n = 0
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def diff_span(full: Any, other: Any) -> tuple[int, int]:
    """[start, end) of ``full`` (a string or token list) that differs from ``other``."""
    limit = min(len(full), len(other))
    start = _common_prefix(full, other, limit)
    suffix = _common_prefix(full[::-1], other[::-1], limit - start)
    return start, len(full) - suffix


def fold_system_message(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
        "field_tools": "tools",
        "message_property_mappings": {"role": "role", "content": "content"},
        "message_field_training": None,
        "roles": None,
        "roles_to_train": ["assistant"],
        "train_on_eos": "turn",
        "train_on_eot": None,
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
        self.template = self._resolve_template(options)
        self.train_on_eos = options["train_on_eos"] or "turn"
        self.train_on_eot = options["train_on_eot"] or self.train_on_eos
        for key, mode in (("train_on_eos", self.train_on_eos), ("train_on_eot", self.train_on_eot)):
            if mode not in MODES:
                raise LatheError(f"{key}: {mode!r} is not one of {', '.join(MODES)}")
        self.role_of = self._role_lookup(options["roles"])
        roles_to_train = options["roles_to_train"] if options["roles_to_train"] is not None else ["assistant"]
        self.roles_to_train = {self.role_of.get(r, r) for r in roles_to_train}
        mapping = {"role": "role", "content": "content", **(options["message_property_mappings"] or {})}
        self.role_key, self.content_key = mapping["role"], mapping["content"]
        self.eot_ids = self._eot_ids()

    def _resolve_template(self, options: dict[str, Any]) -> str:
        own = resolve_chat_template(options["chat_template"], options["chat_template_jinja"], self.tokenizer.chat_template)
        if not own:
            raise LatheError("chat_template strategy: the tokenizer has no chat template; set chat_template "
                             "(a built-in such as chatml, llama3_1, qwen2_5, mistral_v3, gemma3; or jinja)")
        return own

    @staticmethod
    def _role_lookup(roles: dict[str, Any] | None) -> dict[str, str]:
        """Source role → template role. A ``roles`` mapping replaces the default one (as in Axolotl)."""
        chosen = {k: [v] if isinstance(v, str) else list(v) for k, v in roles.items()} if roles else DEFAULT_ROLES
        return {source: target for target, sources in chosen.items() for source in sources}

    # --- end-of-turn tokens -------------------------------------------------------------------

    def _single_id(self, token: str) -> int:
        ids = self.tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1:
            raise LatheError(f"eot_tokens: {token!r} is {len(ids)} tokens for this tokenizer, not one; "
                             "add it as a special token (tokens / special_tokens)")
        return int(ids[0])

    def _eot_ids(self) -> set[int]:
        """Ids of the end-of-turn tokens: ``eot_tokens`` as Axolotl reads them, or lathe's default.

        Unset, Axolotl uses EOS alone; lathe adds the special token that closes an assistant turn
        in this template (``<|im_end|>`` when EOS is ``<|endoftext|>``, ``<|eot_id|>``, ...), so the
        model learns to end its turns. ``eot_tokens: [<EOS token>]`` restores Axolotl's default.
        """
        eos = self.tokenizer.eos_token
        explicit = self.cfg.eot_tokens
        tokens = list(explicit) if explicit is not None else ([eos] if eos else [])
        if tokens == [eos]:
            ids = {self._single_id(eos)}
            if explicit is None and (end := self._template_turn_end()) is not None:
                return ids | {end}
            if eos not in self.template and "eos_token" not in self.template:
                warnings.warn(f"EOS token {eos!r} is not in the chat template: turn ends will not be trained; "
                              "set eot_tokens to the template's turn-ending token", TemplateWarning, stacklevel=2)
            return ids
        kept = []
        for token in tokens:
            if token in self.template:
                kept.append(token)
            else:
                warnings.warn(f"eot_tokens: {token!r} is not in the chat template; ignored", TemplateWarning, stacklevel=2)
        if eos in kept and self.train_on_eos != self.train_on_eot:
            raise LatheError(f"train_on_eos ({self.train_on_eos}) and train_on_eot ({self.train_on_eot}) differ, "
                             f"but the EOS token {eos!r} is one of eot_tokens; make them equal or drop it from eot_tokens")
        return {self._single_id(token) for token in kept}

    def _template_turn_end(self) -> int | None:
        """The special token (not EOS, BOS or pad) right after an assistant turn's content, if any."""
        probe = [{"role": "user", "content": PLACEHOLDERS[1]}, {"role": "assistant", "content": PLACEHOLDERS[0]}]
        try:
            text = self.render_text(probe)
        except Exception:  # noqa: BLE001 - a template may refuse the probe (it needs a system turn, ...)
            return None
        where = text.rfind(PLACEHOLDERS[0])
        if where < 0:
            return None
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, starts = encoded["input_ids"], [s for s, _ in encoded["offset_mapping"]]
        special = set(self.tokenizer.all_special_ids) | {
            i for i, t in self.tokenizer.added_tokens_decoder.items() if getattr(t, "special", False)}
        special -= {self.tokenizer.eos_token_id, self.tokenizer.bos_token_id, self.tokenizer.pad_token_id}
        end = bisect_left(starts, where + len(PLACEHOLDERS[0]))
        return next((ids[j] for j in range(end, min(end + END_WINDOW + 1, len(ids))) if ids[j] in special), None)

    # --- turns --------------------------------------------------------------------------------

    def _turn(self, message: dict[str, Any]) -> dict[str, Any]:
        raw_role, content = message.get(self.role_key), message.get(self.content_key)
        if raw_role is None or content is None:
            missing = self.role_key if raw_role is None else self.content_key
            raise LatheError(f"a message has no {missing!r} (message_property_mappings names the keys)")
        turn = {k: v for k, v in message.items() if v is not None and k not in (self.role_key, self.content_key)}
        turn.update(role=self.role_of.get(raw_role, raw_role), content=content)
        return turn

    def turns(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The conversation as the template sees it.

        A row's ``system`` column becomes the first turn when the conversation has no system turn;
        ``drop_system_message`` then drops a first system turn; ``default_system_message`` (lathe's
        meaning) becomes the first turn when none is left; ``system_message_handling: fold`` then
        moves a first system turn into the first user turn.
        """
        messages = self.field(row, self.options["field_messages"])
        if isinstance(messages, str):
            messages = json.loads(messages)
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise LatheError(f"{self.options['field_messages']!r} is not a list of messages")
        turns = [self._turn(m) for m in messages]
        if row.get(SYSTEM_COLUMN) is not None and (not turns or turns[0]["role"] != "system"):
            turns.insert(0, {"role": "system", "content": row[SYSTEM_COLUMN]})
        if self.options["drop_system_message"] and turns and turns[0]["role"] == "system":
            turns = turns[1:]
        system = self.cfg.default_system_message
        if system and (not turns or turns[0]["role"] != "system"):
            turns.insert(0, {"role": "system", "content": system})
        if self.cfg.system_message_handling == "fold":
            turns = fold_system_message(turns)
        return turns

    def tools(self, row: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The row's tool definitions (``field_tools``, a list or its JSON text), passed to the template."""
        tools = row.get(self.options["field_tools"])
        if isinstance(tools, str):
            tools = json.loads(tools)
        if tools is not None and not isinstance(tools, list):
            raise LatheError(f"{self.options['field_tools']!r} is not a list of tool definitions")
        return tools or None

    def render_text(self, turns: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        from jinja2.exceptions import TemplateError

        try:
            return str(self.tokenizer.apply_chat_template(turns, chat_template=self.template, tokenize=False,
                                                          tools=tools))
        except TemplateError as exc:  # the template's own raise_exception: a conversation its family refuses
            raise LatheError(f"the chat template refuses this conversation: {exc}") from None

    def render(self, turns: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[int]:
        return list(self.tokenizer(self.render_text(turns, tools), add_special_tokens=False)["input_ids"])

    def _placeholder(self, turns: list[dict[str, Any]], i: int, text: str) -> list[dict[str, Any]]:
        return [*turns[:i], {"role": turns[i]["role"], "content": text}, *turns[i + 1 :]]

    def content_span(self, turns: list[dict[str, Any]], i: int, full: str, starts: list[int], ends: list[int],
                     ids: list[int], tools: list[dict[str, Any]] | None = None) -> tuple[int, int] | None:
        """Token span [start, end) of turn ``i``'s content in the full render; None when it is empty."""
        if starts:
            spans = [diff_span(full, self.render_text(self._placeholder(turns, i, p), tools)) for p in PLACEHOLDERS]
            first, last = min(s for s, _ in spans), max(e for _, e in spans)
            if last <= first:
                return None
            start, end = bisect_right(ends, first), bisect_left(starts, last)
        else:  # a slow tokenizer has no offsets: diff the tokens instead
            start, end = diff_span(ids, self.render(self._placeholder(turns, i, PLACEHOLDERS[0]), tools))
        return (start, end) if end > start else None

    def _trained(self, turn: dict[str, Any]) -> bool:
        flag = self.options["message_field_training"]
        if flag and turn.get(flag) is not None:
            return bool(turn[flag])
        return bool(self.cfg.train_on_inputs) or turn["role"] in self.roles_to_train

    def tokenize(self, row: dict[str, Any]) -> Example:
        return self.tokenize_turns(self.turns(row), self.tools(row))

    def tokenize_turns(self, turns: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Example:
        """Token ids and labels of a conversation already in the template's shape (:meth:`turns`)."""
        full = self.render_text(turns, tools)
        if getattr(self.tokenizer, "is_fast", False):
            encoded = self.tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
            ids = list(encoded["input_ids"])
            starts, ends = [s for s, _ in encoded["offset_mapping"]], [e for _, e in encoded["offset_mapping"]]
        else:
            ids, starts, ends = self.render(turns, tools), [], []
        labels = [IGNORE] * len(ids)
        last = {"eot": -1, "eos": -1}
        every = "all" in (self.train_on_eos, self.train_on_eot)
        for i, turn in enumerate(turns):
            trained = self._trained(turn)
            if not trained and not every:
                continue
            span = self.content_span(turns, i, full, starts, ends, ids, tools)
            if trained and span is not None:
                labels[span[0] : span[1]] = ids[span[0] : span[1]]
            end = span[1] if span is not None else -1
            for kind, wanted, mode in (("eot", self.eot_ids, self.train_on_eot),
                                       ("eos", {self.tokenizer.eos_token_id}, self.train_on_eos)):
                j = next((j for j in range(end, len(ids)) if ids[j] in wanted), None)
                if j is None or abs(j - end) > END_WINDOW:
                    continue
                last[kind] = j
                if mode == "all" or (mode == "turn" and trained):
                    labels[j] = ids[j]
        for kind, mode in (("eot", self.train_on_eot), ("eos", self.train_on_eos)):
            if mode == "last" and last[kind] != -1:
                labels[last[kind]] = ids[last[kind]]
        return {"input_ids": ids, "labels": labels}
