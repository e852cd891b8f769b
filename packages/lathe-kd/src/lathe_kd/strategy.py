"""Dataset type ``kd.chat_template``: a conversation plus the teacher's top-k per token.

The conversation is rendered and masked exactly like ``chat_template`` (all its keys
apply). ``logprobs_field`` (default ``logprobs``) holds one entry per token of the
rendered conversation: entry j is the teacher's top-k for token j given the tokens
before it, a list of ``{"token": id | "token_id:N", "logprob": float}`` (``null`` or
``[]`` where there is none, e.g. the first token). A list shorter than the token
sequence covers its last tokens (usually the response the teacher scored). The
dataset key ``temperature`` (default 1.0) is the temperature the teacher's logprobs
were produced at; they are rescaled to ``kd_temperature`` here (see
:mod:`lathe_kd.teacher`).

Each row gets two per-token columns next to ``input_ids``: ``teacher_ids`` and
``teacher_logprobs`` (lists of k values, empty where the token has no teacher entry).
"""

from __future__ import annotations

from typing import Any, ClassVar

from lathe.data.strategies import Example
from lathe.data.strategies.chat import ChatTemplateStrategy
from lathe_kd.teacher import TeacherDataError, parse_position, rescale

TEACHER_IDS = "teacher_ids"
TEACHER_LOGPROBS = "teacher_logprobs"


class KDChatTemplateStrategy(ChatTemplateStrategy):
    keys: ClassVar[dict[str, Any]] = {
        **ChatTemplateStrategy.keys,
        "logprobs_field": "logprobs",
        "temperature": 1.0,
    }

    def __init__(self, cfg: Any, tokenizer: Any, options: dict[str, Any]):
        super().__init__(cfg, tokenizer, options)
        temperature = options["temperature"]
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature <= 0:
            raise TeacherDataError(f"temperature: {temperature!r} must be a number > 0 (the teacher's sampling temperature)")
        self.gen_temperature = float(temperature)

    def teacher_rows(self, row: dict[str, Any], length: int) -> tuple[list[list[int]], list[list[float]]]:
        field = self.options["logprobs_field"]
        entries = self.field(row, field)
        if not isinstance(entries, list):
            raise TeacherDataError(f"{field}: expected a list with one entry per token, got {type(entries).__name__}")
        if len(entries) > length:
            raise TeacherDataError(
                f"{field}: {len(entries)} entries for a conversation of {length} tokens "
                "(one entry per token of the rendered conversation, at most)"
            )
        ids: list[list[int]] = [[] for _ in range(length - len(entries))]
        lps: list[list[float]] = [[] for _ in range(length - len(entries))]
        vocab = len(self.tokenizer)
        for j, entry in enumerate(entries, start=length - len(entries)):
            where = f"{field}[{j - (length - len(entries))}]"
            tok, lp = parse_position(entry, where)
            bad = [t for t in tok if not 0 <= t < vocab]
            if bad:
                raise TeacherDataError(f"{where}: token id {bad[0]} is outside the vocabulary ({vocab} tokens)")
            ids.append(tok)
            lps.append(rescale(lp, self.gen_temperature, self.cfg.kd_temperature, self.cfg.kd_normalize_topk))
        return ids, lps

    def tokenize(self, row: dict[str, Any]) -> Example:
        example = super().tokenize(row)
        ids, lps = self.teacher_rows(row, len(example["input_ids"]))
        return {**example, TEACHER_IDS: ids, TEACHER_LOGPROBS: lps}  # type: ignore[dict-item]
