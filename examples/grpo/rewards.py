"""The dataset transform and reward functions of examples/grpo/lora.yaml (named there as rewards.<function>)."""

from __future__ import annotations

import re
from typing import Any

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _final_number(text: str) -> str | None:
    """The last number of a text (GSM8K answers end with '#### 42'), without thousands separators."""
    found = _NUMBER.findall(text.split("####")[-1])
    return found[-1].replace(",", "") if found else None


def exact_match(prompts: list[str], completions: list[str], answer: list[str], **_: Any) -> list[float]:
    """1 when the completion's last number equals the reference answer's, else 0."""
    return [1.0 if (got := _final_number(c)) is not None and got == _final_number(a) else 0.0
            for c, a in zip(completions, answer, strict=True)]


def gsm8k_transform(cfg: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, list[str]]]:
    """The dataset type ``rewards.gsm8k_transform``, as Axolotl calls it: the question becomes the
    user turn of the prompt; the answer column stays, for exact_match."""

    def transform_fn(example: dict[str, str], tokenizer: Any = None) -> dict[str, Any]:
        return {"prompt": [{"role": "user", "content": example["question"]}], "answer": example["answer"]}

    return transform_fn, {"remove_columns": ["question"]}
