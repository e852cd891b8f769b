"""Every template name a config may give: built-ins, Axolotl's names mapped to them, refused names.

``chat_template`` is checked against this table by ``lathe config validate`` (through
:func:`lathe.data.templates.check`) before anything is loaded.
"""

from __future__ import annotations

from lathe.data.templates.builtins import BUILTINS

SPECIAL = ("tokenizer_default", "tokenizer_default_fallback_chatml", "jinja")

# Axolotl's name -> the lathe built-in that renders the same format (checked against the goldens).
ALIASES: dict[str, str] = {
    "qwen_25": "qwen2_5",
    "qwen3_5": "qwen3",
    "mistral_v2v3": "mistral_v3",
    "phi_35": "phi_3_5",
    "aya": "cohere",
    "gemma3n": "gemma3",
}

_TOKENIZER = "use chat_template: tokenizer_default with the model's own tokenizer"

# Axolotl's names of vision-language templates: a vision-language run renders with its processor's own
# template (which places the family's image tokens); a text-only model refuses them.
VISION: tuple[str, ...] = ("llava", "pixtral", "qwen2_vl", "llama3_2_vision", "lfm2vl", "smolvlm")

# Names lathe does not render, each with the reason and what to do instead.
REFUSED: dict[str, str] = {
    "qwen": "ambiguous (Qwen2, Qwen2.5 and Qwen3 differ): name qwen2, qwen2_5 or qwen3",
    "mistral": "ambiguous (the Mistral formats differ in spaces and system handling): name mistral_v1, mistral_v3, "
               "mistral_v3_tekken or mistral_v7_tekken",
    "phi": "ambiguous (the Phi formats differ): name phi_3, phi_3_5, phi_4, phi_4_mini or phi_4_reasoning",
    "gemma4": f"Gemma 4's format is not written for lathe yet; {_TOKENIZER}",
    "gemma4_unified": f"Gemma 4's format is not written for lathe yet; {_TOKENIZER}",
    "jamba": f"Jamba's format is not written for lathe yet; {_TOKENIZER}",
    "command_a": f"Command A's format (safety preamble, documents) is not written for lathe yet; {_TOKENIZER}",
    "command_a_tool_use": f"Command A's tool-use format is not written for lathe yet; {_TOKENIZER}",
    "command_a_rag": f"Command A's RAG format is not written for lathe yet; {_TOKENIZER}",
}


def names() -> list[str]:
    """Every name ``chat_template`` accepts: built-ins, Axolotl's aliases and the special names."""
    return [*BUILTINS, *ALIASES, *SPECIAL, *VISION]
