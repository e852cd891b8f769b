"""Preference dataset types, by Axolotl's names (``chatml.intel``, ``llama3.ultra``,
``chat_template.default``, …).

Each row becomes a prompt and one or two completions, as text, then tokens:

- paired methods (dpo, ipo, orpo, simpo, cpo): ``input_ids``/``labels`` hold prompt + chosen
  (prompt labels -100), ``rejected_input_ids``/``rejected_labels`` prompt + rejected;
- ``rl: kto``: ``input_ids``/``labels`` hold prompt + completion, ``kto_label`` is ``[1]`` for a
  desirable row and ``[0]`` otherwise, ``completion_start`` the prompt's token count (the KL
  estimate pairs prompts with other rows' completions).

The prompt is tokenized with the tokenizer's special tokens (its BOS), each completion without
them and with EOS appended, as TRL does. ``max_prompt_len`` keeps the prompt's last tokens.
A row without a field the type needs, or whose chosen and rejected are identical, is an error
naming the dataset, the row and the field.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lathe.data.strategies import IGNORE, Example, PromptStrategy
from lathe.errors import LatheError

REJECTED_IDS = "rejected_input_ids"
REJECTED_LABELS = "rejected_labels"
KTO_LABEL = "kto_label"
COMPLETION_START = "completion_start"
REWARD_COLUMNS = "reward_columns"  # GRPO rows: the dataset's other fields, as JSON, for the reward functions

# Prompt layouts of Axolotl's chatml.* and llama3.* types: (system turn, user turn + assistant header, end of turn).
FORMATS: dict[str, tuple[str, str, str]] = {
    "chatml": (
        "<|im_start|>system\n{}<|im_end|>\n",
        "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
        "<|im_end|>",
    ),
    "llama3": (
        "<|start_header_id|>system<|end_header_id|>\n\n{}<|eot_id|>",
        "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|eot_id|>",
    ),
}


class PreferenceStrategy(PromptStrategy):
    """Tokenizes what :meth:`pair` / :meth:`single` return; subclasses read the row's fields."""

    def pair(self, row: dict[str, Any]) -> tuple[str, str, str]:
        """(prompt, chosen, rejected) as text."""
        raise NotImplementedError

    def single(self, row: dict[str, Any]) -> tuple[str, str, bool]:
        """(prompt, completion, desirable) as text, for ``rl: kto``."""
        raise LatheError(f"this dataset type has no KTO form (rl: {self.cfg.rl})")

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.encode(prompt, first=True)
        limit = self.cfg.max_prompt_len
        return ids[-limit:] if limit else ids

    def _completion_ids(self, text: str) -> list[int]:
        ids = self.encode(text, first=False)
        eos = self.tokenizer.eos_token_id
        if eos is not None and (not ids or ids[-1] != eos):
            ids.append(eos)
        return ids

    def _sequence(self, prompt: list[int], completion: list[int]) -> tuple[list[int], list[int]]:
        ids = [*prompt, *completion][: self.cfg.sequence_len]
        labels = ([IGNORE] * len(prompt) + completion)[: self.cfg.sequence_len]
        return ids, labels

    def tokenize(self, row: dict[str, Any]) -> Example:
        if self.cfg.rl == "kto":
            prompt_text, completion, desirable = self.single(row)
            prompt = self._prompt_ids(prompt_text)
            ids, labels = self._sequence(prompt, self._completion_ids(completion))
            return {"input_ids": ids, "labels": labels, KTO_LABEL: [int(desirable)], COMPLETION_START: [len(prompt)]}
        prompt_text, chosen, rejected = self.pair(row)
        if chosen == rejected:
            raise LatheError(f"chosen and rejected are identical (fields {self.chosen_field!r} and "
                             f"{self.rejected_field!r}); a pair must differ")
        prompt = self._prompt_ids(prompt_text)
        ids, labels = self._sequence(prompt, self._completion_ids(chosen))
        rejected_ids, rejected_labels = self._sequence(prompt, self._completion_ids(rejected))
        return {"input_ids": ids, "labels": labels, REJECTED_IDS: rejected_ids, REJECTED_LABELS: rejected_labels}

    chosen_field = "chosen"
    rejected_field = "rejected"


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise LatheError(f"field {field!r}: expected text, got {type(value).__name__}")
    return value


def _last_content(value: Any, field: str) -> str:
    """The content of a message list's last message, a message's content, or the text itself."""
    if isinstance(value, list) and value:
        value = value[-1]
    if isinstance(value, dict):
        value = value.get("content")
    return _text(value, field)


class TemplatedPreference(PreferenceStrategy):
    """Axolotl's ``<format>.<variant>`` types: fixed chatml / llama3 text around the row's fields."""

    format: ClassVar[str]
    variant: ClassVar[str]

    def _prompt_field(self, row: dict[str, Any]) -> str:
        if self.variant == "intel":
            return "question"
        if self.variant == "default":
            return next((k for k in ("prompt", "input", "question") if k in row), "instruction")
        return "prompt"

    def _prompt(self, row: dict[str, Any], question: str) -> str:
        system_turn, user_turn, _ = FORMATS[self.format]
        system = row.get("system")
        return (system_turn.format(system) if system else "") + user_turn.format(question)

    def _end(self, text: str) -> str:
        return text + FORMATS[self.format][2]

    def pair(self, row: dict[str, Any]) -> tuple[str, str, str]:
        if self.variant == "argilla_chat":
            chosen, rejected = self.field(row, "chosen"), self.field(row, "rejected")
            question = _text(chosen[0]["content"], "chosen") if isinstance(chosen, list) and chosen else ""
            prompt = FORMATS[self.format][1].format(question)
            return prompt, self._end(_last_content(chosen, "chosen")), self._end(_last_content(rejected, "rejected"))
        name = self._prompt_field(row)
        question = _text(self.field(row, name), name)
        chosen_key = "chosen" if self.variant != "default" or "chosen" in row else "chosen_response"
        rejected_key = "rejected" if self.variant != "default" or "rejected" in row else "rejected_response"
        self.chosen_field, self.rejected_field = chosen_key, rejected_key
        read = _last_content if self.variant == "ultra" else _text
        chosen = read(self.field(row, chosen_key), chosen_key)
        rejected = read(self.field(row, rejected_key), rejected_key)
        return self._prompt(row, question), self._end(chosen), self._end(rejected)

    def single(self, row: dict[str, Any]) -> tuple[str, str, bool]:
        name = self._prompt_field(row)
        question = _text(self.field(row, name), name)
        completion = _text(self.field(row, "completion"), "completion")
        return self._prompt(row, question), self._end(completion), _desirable(self.field(row, "label"), "label")


def _desirable(value: Any, field: str) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise LatheError(f"field {field!r}: expected true/false (desirable or not), got {value!r}")


class ChatTemplatePreference(PreferenceStrategy):
    """``chat_template.default``: the conversation in ``field_messages`` rendered with the tokenizer's
    chat template (``chat_template`` sets it), then the chosen/rejected assistant turn.

    A completion is rendered as the reply to a placeholder user turn, and its text taken from
    where its content starts (the template's end-of-turn text kept, trailing spaces dropped),
    as Axolotl does. ``field_chosen``/``field_rejected`` hold a string, a message, or a list
    whose last message is the completion. For ``rl: kto``, ``field_completion`` and ``field_label``.
    """

    keys: ClassVar[dict[str, Any]] = {
        "field_messages": "messages",
        "field_chosen": "chosen",
        "field_rejected": "rejected",
        "field_completion": "completion",
        "field_label": "label",
        "message_property_mappings": None,
    }

    def __init__(self, cfg: Any, tokenizer: Any, options: dict[str, Any]):
        super().__init__(cfg, tokenizer, options)
        self.chosen_field, self.rejected_field = options["field_chosen"], options["field_rejected"]
        mappings = options["message_property_mappings"] or {}
        self.role_key, self.content_key = mappings.get("role", "role"), mappings.get("content", "content")
        if getattr(tokenizer, "chat_template", None) is None:
            raise LatheError("chat_template.default needs a chat template: the tokenizer has none; set chat_template")

    def _messages(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        name = self.options["field_messages"]
        messages = self.field(row, name)
        if isinstance(messages, str):
            return [{"role": "user", "content": messages}]
        return [{"role": m[self.role_key], "content": m[self.content_key]} for m in messages]

    def _completion(self, value: Any, field: str) -> str:
        if isinstance(value, list) and value:
            value = value[-1]
        content = value.get(self.content_key) if isinstance(value, dict) else _text(value, field)
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": "[[dummy_message]]"}, {"role": "assistant", "content": content}],
            add_generation_prompt=False, tokenize=False,
        )
        return str(text[text.find(content):]).rstrip()

    def _prompt(self, row: dict[str, Any]) -> str:
        return str(self.tokenizer.apply_chat_template(self._messages(row), add_generation_prompt=True, tokenize=False))

    def pair(self, row: dict[str, Any]) -> tuple[str, str, str]:
        chosen = self._completion(self.field(row, self.chosen_field), self.chosen_field)
        rejected = self._completion(self.field(row, self.rejected_field), self.rejected_field)
        return self._prompt(row), chosen, rejected

    def single(self, row: dict[str, Any]) -> tuple[str, str, bool]:
        name, label = self.options["field_completion"], self.options["field_label"]
        completion = self._completion(self.field(row, name), name)
        return self._prompt(row), completion, _desirable(self.field(row, label), label)

    def encode(self, text: str, *, first: bool) -> list[int]:
        """The chat template writes the BOS itself; no second one is added."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])


VARIANTS = ("default", "intel", "prompt_pairs", "ultra", "argilla_chat")
TEMPLATED: dict[str, type[TemplatedPreference]] = {}
for _fmt in FORMATS:
    for _variant in VARIANTS:
        _name = f"{_fmt.capitalize()}{_variant.title().replace('_', '')}"
        # module-level classes, so strategies pickle into tokenizing processes
        globals()[_name] = TEMPLATED[f"{_fmt}.{_variant}"] = type(
            _name, (TemplatedPreference,), {"format": _fmt, "variant": _variant, "__module__": __name__}
        )


def preference_strategies() -> dict[str, type[PromptStrategy]]:
    return {**TEMPLATED, "chat_template.default": ChatTemplatePreference}
