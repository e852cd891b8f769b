"""Instruction formats: Axolotl's alpaca family, its per-row-system types, and the user-defined format.

Each type is a field reader (which row columns give instruction, input and output) and a
prompter (a preamble and the turn formats of a prompt style), with Axolotl's meanings:

- ``alpaca`` renders the Alpaca preamble, then the turn; a ``system`` column is not read
  (per-row system prompts are the ``alpaca_w_system.*`` types).
- ``<type>:<style>`` (``alpaca:chat``, ``jeopardy:chatml`` ...) picks the prompt style:
  ``instruct`` (the default), ``chat``, ``chatml`` or ``phi``.
- ``alpaca_w_system.load_instruct`` / ``.load_chat`` (also plain ``alpaca_w_system``),
  ``.load_open_orca``, ``.load_open_orca_chatml`` and ``orcamini`` take the system prompt
  from each row and render no preamble.
- ``alpaca_chatml`` is lathe's own: one ChatML exchange with the row's ``system`` (or
  ``default_system_message``) as the system turn.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from lathe.data.strategies import MissingField, PromptResponseStrategy, PromptStrategy
from lathe.errors import LatheError

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request."
)
ALPACA_PREAMBLE_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
CHAT_PREAMBLE = (
    "Below is an instruction from a USER that describes a task, paired with an input that provides further "
    "context. The ASSISTANT writes a response that concisely and appropriately completes the request.\n\n"
)
CHAT_PREAMBLE_NO_INPUT = (
    "Below is an instruction from a USER that describes a task. The ASSISTANT writes a response that "
    "appropriately and concisely completes the request.\n\n"
)


class Formats(NamedTuple):
    """A prompt style: the turn with an input, the turn without one, and how a system text is shown."""

    turn: str
    no_input: str
    system: str


STYLES: dict[str, Formats] = {
    "instruct": Formats("### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
                        "### Instruction:\n{instruction}\n\n### Response:\n", "{system}\n\n"),
    "chat": Formats("USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:", "SYSTEM: {system}\n"),
    "chatml": Formats("<|im_start|>user\n{instruction}\n{input}<|im_end|>\n<|im_start|>assistant\n",
                      "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n",
                      "<|im_start|>system\n{system}<|im_end|>\n"),
    "phi": Formats("<|user|>\n{instruction}<|end|>{input}<|assistant|>", "<|user|>\n{instruction}<|end|>\n<|assistant|>\n",
                   "<|system|>\n{system}<|end|>\n"),
}
_CHAT_TURNS = ("USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:")
_TLDR = "USER: Summarize the following article as a TL;DR.\n{instruction}"
OPEN_ORCA_STYLES: dict[str, Formats] = {
    "instruct": Formats("### Human:\n{instruction}\n### Additional Context:\n{input}\n### Assistant:\n",
                        "### Human:\n{instruction}\n### Assistant:\n", "### System:\n{system}\n"),
    "chat": STYLES["chat"],
    "chatml": STYLES["chatml"],
}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class AlpacaStrategy(PromptResponseStrategy):
    """``instruction``/``input``/``output`` rows under a preamble in a prompt style; output and EOS trained.

    Subclasses (one per Axolotl type) set the preamble, the style, fixed formats, or the fields.
    """

    keys: ClassVar[dict[str, Any]] = {"field_instruction": "instruction", "field_input": "input", "field_output": "output"}
    style: ClassVar[str] = "instruct"
    styles: ClassVar[dict[str, Formats]] = STYLES
    preamble: ClassVar[tuple[str, str]] = (ALPACA_PREAMBLE, ALPACA_PREAMBLE_NO_INPUT)
    fixed: ClassVar[Formats | None] = None  # formats that do not follow the style (Axolotl's own prompters)

    def formats(self) -> Formats:
        if self.fixed is not None:
            return self.fixed
        if self.style not in self.styles:
            raise LatheError(f"prompt style {self.style!r} is not one of {', '.join(self.styles)}")
        return self.styles[self.style]

    def parts(self, row: dict[str, Any]) -> tuple[str, str, str]:
        """Instruction, input (may be empty) and output of a row."""
        return (_text(self.field(row, self.options["field_instruction"])), _text(row.get(self.options["field_input"])),
                _text(self.field(row, self.options["field_output"])))

    def split(self, row: dict[str, Any]) -> tuple[str, str]:
        instruction, given, output = self.parts(row)
        fmt = self.formats()
        system = self.preamble[0] if given else self.preamble[1]
        head = fmt.system.format(system=system) if system else ""
        body = fmt.turn.format(instruction=instruction, input=given) if given else fmt.no_input.format(instruction=instruction)
        return head + body, output


class ChoiceStrategy(AlpacaStrategy):
    """``question``, ``choices`` (a list) and ``solution`` (or ``explanation``); Axolotl's explainchoice."""

    keys: ClassVar[dict[str, Any]] = {}
    preamble = ("Choose the answer that best answers the question. Explain your reasoning.\n",) * 2

    def parts(self, row: dict[str, Any]) -> tuple[str, str, str]:
        choices = "\n".join(f'- "{choice}"' for choice in self.field(row, "choices"))
        output = row["solution"] if row.get("solution") is not None else self.field(row, "explanation")
        return _text(self.field(row, "question")), choices, _text(output)


class ConciseChoiceStrategy(ChoiceStrategy):
    preamble = ("Choose the answer that best answers the question. Be concise in your response.\n\n",) * 2
    fixed = Formats(*_CHAT_TURNS, "{system}")


class _FixedFields(AlpacaStrategy):
    """Types whose columns are fixed: ``columns`` names instruction, input ("" for none) and output."""

    keys: ClassVar[dict[str, Any]] = {}
    columns: ClassVar[tuple[str, str, str]] = ("instruction", "input", "output")
    output_prefix: ClassVar[str] = ""

    def parts(self, row: dict[str, Any]) -> tuple[str, str, str]:
        instruction, given, output = self.columns
        return (_text(self.field(row, instruction)), _text(row.get(given)) if given else "",
                self.output_prefix + _text(self.field(row, output)))


class JeopardyStrategy(_FixedFields):
    columns = ("question", "category", "answer")
    output_prefix = "what is "


class OasstStrategy(_FixedFields):
    columns = ("INSTRUCTION", "", "RESPONSE")


class GPTeacherStrategy(_FixedFields):
    columns = ("instruction", "input", "response")


class SummarizeTLDRStrategy(_FixedFields):
    columns = ("article", "", "summary")
    preamble = ("", "")
    fixed = Formats(_TLDR + "\n{input}\nASSISTANT:", _TLDR + "\nASSISTANT:", "{system}")


class AlpacaChatStrategy(AlpacaStrategy):
    """Axolotl's ``alpaca_chat``: the chat style, or the style named by the entry's ``conversation``."""

    keys: ClassVar[dict[str, Any]] = {**AlpacaStrategy.keys, "conversation": "chat"}

    def formats(self) -> Formats:
        style = self.options["conversation"]
        if style not in STYLES:
            raise LatheError(f"conversation: {style!r} is not one of {', '.join(STYLES)}")
        return STYLES[style]


class AlpacaChatQAStrategy(_FixedFields):
    columns = ("question", "", "answer")
    style = "chat"
    preamble = (CHAT_PREAMBLE, CHAT_PREAMBLE_NO_INPUT)


class AlpacaChatCamelStrategy(AlpacaChatQAStrategy):
    columns = ("message_1", "", "message_2")


class SystemColumnStrategy(AlpacaStrategy):
    """Axolotl's ``alpaca_w_system``: the row's system text (a required column) replaces the preamble."""

    keys: ClassVar[dict[str, Any]] = {}
    style = "chat"
    columns: ClassVar[tuple[str, str, str, str]] = ("instruction", "input", "output", "system")

    def system_parts(self, row: dict[str, Any]) -> tuple[str, str, str, str]:
        """Instruction, input, output and system text of a row."""
        instruction, given, output, system = self.columns
        if system not in row:
            raise MissingField(system)
        return (_text(self.field(row, instruction)), _text(row.get(given)) if given else "",
                _text(self.field(row, output)), _text(row[system]))

    def render(self, instruction: str, given: str, system: str) -> str:
        fmt = self.formats()
        head = fmt.system.format(system=system) if system and fmt.system else ""
        body = fmt.turn.format(instruction=instruction, input=given) if given else fmt.no_input.format(instruction=instruction)
        return head + body

    def split(self, row: dict[str, Any]) -> tuple[str, str]:
        instruction, given, output, system = self.system_parts(row)
        return self.render(instruction, given, system), output


class SystemColumnInstructStrategy(SystemColumnStrategy):
    style = "instruct"


class OpenOrcaStrategy(SystemColumnStrategy):
    """``question``, ``response`` and ``system_prompt`` columns (OpenOrca), in OpenOrca's formats."""

    style = "instruct"
    styles = OPEN_ORCA_STYLES
    columns = ("question", "", "response", "system_prompt")


class OpenOrcaChatmlStrategy(OpenOrcaStrategy):
    style = "chatml"


class OrcaMiniStrategy(OpenOrcaStrategy):
    """Orca Mini v2: ``### System:`` always shown (even empty), then ``### User:`` and ``### Response:``."""

    def render(self, instruction: str, given: str, system: str) -> str:
        return f"### System:\n{system}\n\n### User:\n{instruction}\n\n### Response:\n"


class UserDefinedStrategy(SystemColumnStrategy):
    """Field names and format strings given in the entry (Axolotl's ``type: {field_instruction: ..., format: ...}``).

    ``format`` (default ``"{instruction} {input} "``) is used when the row's input is not empty,
    ``no_input_format`` (default ``"{instruction} "``) otherwise; ``system_format`` (default
    ``"{system}"``) shows the row's ``field_system`` column, or ``system_prompt`` when the row has
    no such column. Rows without ``field_input`` / ``field_output`` columns read them as empty.
    """

    keys: ClassVar[dict[str, Any]] = {
        "field_instruction": "instruction",
        "field_input": "input",
        "field_output": "output",
        "field_system": "system",
        "format": "{instruction} {input} ",
        "no_input_format": "{instruction} ",
        "system_format": "{system}",
        "system_prompt": "",
    }

    def formats(self) -> Formats:
        o = self.options
        return Formats(o["format"] or "", o["no_input_format"] or "", o["system_format"] or "")

    def system_parts(self, row: dict[str, Any]) -> tuple[str, str, str, str]:
        o = self.options
        system = row[o["field_system"]] if o["field_system"] in row else o["system_prompt"]
        return (_text(self.field(row, o["field_instruction"])), _text(row.get(o["field_input"])),
                _text(row.get(o["field_output"])), _text(system))


class AlpacaChatmlStrategy(AlpacaStrategy):
    """lathe's ``alpaca_chatml``: one ChatML exchange; the row's ``field_system`` or ``default_system_message``."""

    keys: ClassVar[dict[str, Any]] = {**AlpacaStrategy.keys, "field_system": "system"}

    def split(self, row: dict[str, Any]) -> tuple[str, str]:
        instruction, given, output = self.parts(row)
        system = row.get(self.options["field_system"]) or self.cfg.default_system_message
        user = f"{instruction}\n\n{given}" if given else instruction
        prompt = (f"<|im_start|>system\n{system}<|im_end|>\n" if system else "")
        prompt += f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        end = "" if self.tokenizer.eos_token == "<|im_end|>" else "<|im_end|>"
        return prompt, output + end


# Axolotl's alpaca-like types that take a ``:style`` suffix (``alpaca:chatml``).
STYLED: dict[str, type[AlpacaStrategy]] = {
    "alpaca": AlpacaStrategy,
    "explainchoice": ChoiceStrategy,
    "concisechoice": ConciseChoiceStrategy,
    "summarizetldr": SummarizeTLDRStrategy,
    "jeopardy": JeopardyStrategy,
    "oasst": OasstStrategy,
    "gpteacher": GPTeacherStrategy,
}


class _Unprompted(AlpacaStrategy):
    preamble = ("", "")


class _AlpacaChatConcise(AlpacaStrategy):
    style = "chat"
    preamble = (CHAT_PREAMBLE, CHAT_PREAMBLE_NO_INPUT)


class _UnpromptedChat(_Unprompted):
    style = "chat"


def _styled(base: type[AlpacaStrategy], style: str) -> type[AlpacaStrategy]:
    """``base`` in prompt style ``style``: a module-level class (picklable for tokenizing processes)."""
    name = f"{base.__name__}_{style}"
    cls = type(name, (base,), {"style": style, "__module__": __name__, "__qualname__": name})
    globals()[name] = cls
    return cls


def instruct_strategies() -> dict[str, type[PromptStrategy]]:
    """Every instruction type by its Axolotl name (``format:variant`` spellings included)."""
    out: dict[str, type[PromptStrategy]] = {}
    for name, base in STYLED.items():
        out[name] = base
        for style in STYLES:
            out[f"{name}:{style}"] = STYLED_VARIANTS[(name, style)]
    out.update({
        "alpaca_chat": AlpacaChatStrategy,
        "alpaca_chat.load_qa": AlpacaChatQAStrategy,
        "alpaca_chat.load_camel_ai": AlpacaChatCamelStrategy,
        "alpaca_chat.load_concise": _AlpacaChatConcise,
        "alpaca_chat.load_no_prompt": _UnpromptedChat,
        "alpaca_instruct": AlpacaStrategy,
        "alpaca_instruct.load_no_prompt": _Unprompted,
        "alpaca_w_system": SystemColumnStrategy,
        "alpaca_w_system.load_chat": SystemColumnStrategy,
        "alpaca_w_system.load_instruct": SystemColumnInstructStrategy,
        "alpaca_w_system.load_open_orca": OpenOrcaStrategy,
        "alpaca_w_system.load_open_orca_chatml": OpenOrcaChatmlStrategy,
        "orcamini": OrcaMiniStrategy,
        "alpaca_chatml": AlpacaChatmlStrategy,
        "user_defined": UserDefinedStrategy,
    })
    return out


STYLED_VARIANTS = {(name, style): _styled(base, style) for name, base in STYLED.items() for style in STYLES}
