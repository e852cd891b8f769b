"""lathe's built-in chat templates: one per real prompt format, named for the family and version.

Each is lathe's own Jinja (``<name>.jinja`` beside this module), tested to render byte-identically
to the family's published template on a fixed set of conversations (the goldens under
``packages/lathe/tests/data/goldens``). ``models`` names the model versions a format serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True)
class Builtin:
    """One built-in prompt format."""

    name: str
    models: str
    system: bool = True
    """False where the family's own template refuses a system message (lathe refuses it too,
    unless ``system_message_handling: fold``)."""
    tools: bool = False
    """True where the format renders tool definitions, tool calls and tool results."""

    @property
    def text(self) -> str:
        """The Jinja source, as ``tokenizer.chat_template``."""
        return _read(self.name)


@cache
def _read(name: str) -> str:
    return files(__package__).joinpath(f"{name}.jinja").read_text(encoding="utf-8")


BUILTINS: dict[str, Builtin] = {b.name: b for b in (
    Builtin("chatml", "any model trained on plain ChatML (<|im_start|>role … <|im_end|>); no default system prompt"),
    Builtin("qwen2", "Qwen2 and Qwen1.5 Instruct/Chat (default system prompt 'You are a helpful assistant.')"),
    Builtin("qwen2_5", "Qwen2.5 Instruct and Qwen2.5-Coder Instruct (default system prompt 'You are Qwen, created by "
            "Alibaba Cloud. You are a helpful assistant.')", tools=True),
    Builtin("qwen3", "Qwen3 (hybrid thinking; also Qwen3.5's text format): <think> blocks kept only after the last "
            "user query", tools=True),
    Builtin("llama3", "Llama 3 (3.0) Instruct 8B/70B: no date header"),
    Builtin("llama3_1", "Llama 3.1 and 3.3 Instruct: 'Cutting Knowledge Date' / 'Today Date' system block with the "
            "fixed date 26 Jul 2024 (unless the date_string variable is given)", tools=True),
    Builtin("llama3_2", "Llama 3.2 Instruct 1B/3B, and the text of Llama 3.2 Vision: the same block with today's date "
            "(strftime_now, as the model's own template)", tools=True),
    Builtin("llama4", "Llama 4 Scout and Maverick Instruct (<|header_start|> … <|eot|>)", tools=True),
    Builtin("mistral_v1", "Mistral 7B Instruct v0.1 (current template: ' [INST] … [/INST] answer</s>', a system "
            "message folded into the first user turn)"),
    Builtin("mistral_v3", "Mistral 7B Instruct v0.2/v0.3, Mixtral 8x7B/8x22B Instruct ('[INST] … [/INST] answer</s>'; "
            "a system message goes before the LAST user turn, so a conversation ending with the answer drops it)",
            tools=True),
    Builtin("mistral_v3_tekken", "Mistral NeMo Instruct (Tekken: '[INST]…[/INST]answer</s>', no spaces; system as "
            "mistral_v3)", tools=True),
    Builtin("mistral_v7_tekken", "Mistral Small 3 / 3.1 Instruct ([SYSTEM_PROMPT] … [/SYSTEM_PROMPT]; default system "
            "prompt with today's date)"),
    Builtin("gemma", "Gemma 1 and Gemma 2 Instruct (no system role)", system=False),
    Builtin("gemma3", "Gemma 3 and Gemma 3n Instruct, text (system message prepended to the first user turn)"),
    Builtin("phi_3", "Phi-3 mini/medium Instruct, as Axolotl's phi_3 (BOS, each user turn followed by "
            "'<|assistant|>\\n')"),
    Builtin("phi_3_5", "Phi-3.5-mini Instruct, as Axolotl's phi_35 (no BOS, no EOS after the last turn)"),
    Builtin("phi_4", "phi-4 (14B) (<|im_start|>role<|im_sep|>…<|im_end|>; no BOS, no default system prompt; tool "
            "messages and tool calls refused: the format has none)"),
    Builtin("phi_4_mini", "Phi-4-mini-instruct (<|role|>…<|end|>, EOS after the last turn; tool definitions as a JSON "
            "string in the system message's tools field, tool calls written in the assistant content)", tools=True),
    Builtin("phi_4_reasoning", "Phi-4-reasoning / Phi-4-reasoning-plus (Axolotl's phi_4.jinja): default "
            "Thought/Solution system prompt"),
    Builtin("deepseek_v2", "DeepSeek-V2 / V2.5 Chat"),
    Builtin("deepseek_v3", "DeepSeek-V3 and DeepSeek-R1 (reasoning before </think> dropped from assistant turns)",
            tools=True),
    Builtin("cohere", "Command-R / Command-R+ and Aya Expanse (contents stripped)"),
    Builtin("falcon_h1", "Falcon-H1 Instruct", tools=True),
    Builtin("nemotron_h", "Nemotron-H Instruct (ChatML; user and assistant roles only)"),
    Builtin("exaone", "EXAONE 3.0 / 3.5 Instruct"),
    Builtin("exaone4", "EXAONE 4.0 (non-reasoning rendering: every assistant turn opens with an empty <think> block)",
            tools=True),
    Builtin("metharme", "Pygmalion / Metharme role-play models (default role-play system prompt)"),
    Builtin("alpaca", "models trained on Alpaca's '### Instruction: / ### Response:' format, as a chat template"),
)}
