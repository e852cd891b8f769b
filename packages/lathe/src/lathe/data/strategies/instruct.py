"""Instruction formats: alpaca, its ChatML variant, and a user-defined format (Axolotl's ``type: {...}``)."""

from __future__ import annotations

from typing import Any, ClassVar

from lathe.data.strategies import PromptResponseStrategy
from lathe.errors import LatheError

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)
_FIELDS = {"field_instruction": "instruction", "field_input": "input", "field_output": "output", "field_system": "system"}


class AlpacaStrategy(PromptResponseStrategy):
    """``instruction``/``input``/``output`` rows in the Alpaca prompt; the output and EOS are trained."""

    keys: ClassVar[dict[str, Any]] = dict(_FIELDS)

    def _parts(self, row: dict[str, Any]) -> tuple[str, str, str]:
        instruction = self.field(row, self.options["field_instruction"])
        given = row.get(self.options["field_input"]) or ""
        output = self.field(row, self.options["field_output"])
        return str(instruction), str(given), str(output)

    def split(self, row: dict[str, Any]) -> tuple[str, str]:
        instruction, given, output = self._parts(row)
        template = ALPACA_WITH_INPUT if given else ALPACA_NO_INPUT
        system = row.get(self.options["field_system"])
        return (f"{system}\n\n" if system else "") + template.format(instruction=instruction, input=given), output


class AlpacaChatmlStrategy(AlpacaStrategy):
    """Alpaca rows rendered as one ChatML user/assistant exchange."""

    def split(self, row: dict[str, Any]) -> tuple[str, str]:
        instruction, given, output = self._parts(row)
        system = row.get(self.options["field_system"]) or self.cfg.default_system_message
        user = f"{instruction}\n\n{given}" if given else instruction
        prompt = (f"<|im_start|>system\n{system}<|im_end|>\n" if system else "")
        prompt += f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        end = "" if self.tokenizer.eos_token == "<|im_end|>" else "<|im_end|>"
        return prompt, output + end


class UserDefinedStrategy(PromptResponseStrategy):
    """Field names and format strings given in the entry (``type: {field_instruction: ..., format: ...}``).

    ``format`` may use ``{instruction}`` and ``{input}``; ``no_input_format`` is used when the
    input is empty; ``system_format`` (with ``{system}``) is prepended when a system text exists.
    """

    keys: ClassVar[dict[str, Any]] = {
        **_FIELDS,
        "format": None,
        "no_input_format": None,
        "system_format": "{system}",
        "system_prompt": "",
    }

    def split(self, row: dict[str, Any]) -> tuple[str, str]:
        fmt = self.options["format"]
        if not fmt:
            raise LatheError("datasets: type: {...} needs a 'format' string, e.g. \"[INST] {instruction} [/INST]\"")
        instruction = str(self.field(row, self.options["field_instruction"]))
        given = str(row.get(self.options["field_input"]) or "")
        output = str(self.field(row, self.options["field_output"]))
        if not given and self.options["no_input_format"]:
            fmt = self.options["no_input_format"]
        system = row.get(self.options["field_system"]) or self.options["system_prompt"]
        prompt = self.options["system_format"].format(system=system) if system else ""
        prompt += fmt.format(instruction=instruction, input=given)
        return prompt, output
