"""Render the model families' published chat templates once, into ``chat_templates.json``.

The published templates are the copies of the models' ``tokenizer_config.json`` chat templates
that Axolotl ships (``axolotl/utils/chat_templates/templates/*.jinja``). They are rendered with
transformers' own renderer (the sandboxed Jinja environment, filters and globals that
``apply_chat_template`` uses), with the family's special tokens, ``add_generation_prompt``,
``tools`` and a fixed ``strftime_now`` so the dated formats are reproducible. lathe's own
templates are tested against the committed strings; this script is not run by the tests.

    python render_published_templates.py /path/to/axolotl/utils/chat_templates/templates

Two families are not among Axolotl's copies: microsoft/phi-4 and microsoft/Phi-4-mini-instruct
(Axolotl's ``phi_4.jinja`` is Phi-4-reasoning's). Their templates were transcribed from the
models' published ``tokenizer_config.json`` into ``reference_templates/`` (not re-downloaded
here: no network) and are rendered the same way (``TRANSCRIBED``); Phi-4-mini also gets a case of
its own (``EXTRA_CASES``: tool definitions in the system message, as its format carries them).

Llama 3.1's own template is not among them: its format is Llama 3.2's (``llama3_2_vision.jinja``,
text path) with the date fixed at "26 Jul 2024" instead of today's, so the ``llama3_1`` goldens are
that template rendered with ``date_string="26 Jul 2024"`` (``published_variables``), which lathe's
``llama3_1`` must produce without being given the date.

A conversation the published template refuses (``raise_exception``, or an error of its own
code) is recorded as ``{"error": message}``: lathe's template must refuse it too.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

SOURCE = "axolotl 0.19.0 wheel (axolotl-0.19.0-py3-none-any.whl), axolotl/utils/chat_templates/templates"
FIXED_NOW = datetime.datetime(2025, 2, 3, 10, 0, 0)
# Variables given to the published template only (see the module docstring).
PUBLISHED_VARIABLES: dict[str, dict[str, str]] = {"llama3_1": {"date_string": "26 Jul 2024"}}

# lathe built-in -> (published file, special tokens the family's tokenizer passes).
# Qwen tokenizers have no BOS token: it is left undefined, as transformers does.
PUBLISHED: dict[str, tuple[str, dict[str, str]]] = {
    "chatml": ("chatml.jinja", {"eos_token": "<|im_end|>"}),
    "qwen2": ("qwen2_vl.jinja", {"eos_token": "<|im_end|>"}),
    "qwen2_5": ("qwen_25.jinja", {"eos_token": "<|im_end|>"}),
    "qwen3": ("qwen3.jinja", {"eos_token": "<|im_end|>"}),
    "qwen3_5": ("qwen3_5.jinja", {"eos_token": "<|im_end|>"}),
    "llama3": ("llama3.jinja", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
    "llama3_1": ("llama3_2_vision.jinja", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
    "llama3_2": ("llama3_2_vision.jinja", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
    "llama4": ("llama4.jinja", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot|>"}),
    "mistral_v1": ("mistral_v1.jinja", {"bos_token": "<s>", "eos_token": "</s>"}),
    "mistral_v3": ("mistral_v2v3.jinja", {"bos_token": "<s>", "eos_token": "</s>"}),
    "mistral_v3_tekken": ("mistral_v3_tekken.jinja", {"bos_token": "<s>", "eos_token": "</s>"}),
    "mistral_v7_tekken": ("mistral_v7_tekken.jinja", {"bos_token": "<s>", "eos_token": "</s>"}),
    "gemma": ("gemma.jinja", {"bos_token": "<bos>", "eos_token": "<eos>"}),
    "gemma3": ("gemma3.jinja", {"bos_token": "<bos>", "eos_token": "<eos>"}),
    "gemma3n": ("gemma3n.jinja", {"bos_token": "<bos>", "eos_token": "<eos>"}),
    "phi_3": ("phi_3.jinja", {"bos_token": "<s>", "eos_token": "<|endoftext|>"}),
    "phi_3_5": ("phi_35.jinja", {"bos_token": "<s>", "eos_token": "<|endoftext|>"}),
    "phi_4_reasoning": ("phi_4.jinja", {"eos_token": "<|im_end|>"}),
    "deepseek_v2": ("deepseek_v2.jinja", {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}),
    "deepseek_v3": ("deepseek_v3.jinja", {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}),
    "cohere": ("cohere.jinja", {"bos_token": "<BOS_TOKEN>", "eos_token": "<|END_OF_TURN_TOKEN|>"}),
    "aya": ("aya.jinja", {"bos_token": "<BOS_TOKEN>", "eos_token": "<|END_OF_TURN_TOKEN|>"}),
    "falcon_h1": ("falcon_h1.jinja", {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}),
    "nemotron_h": ("nemotron_h.jinja", {"bos_token": "<s>", "eos_token": "<|im_end|>"}),
    "exaone": ("exaone.jinja", {"bos_token": "[BOS]", "eos_token": "[|endofturn|]"}),
    "exaone4": ("exaone4.jinja", {"bos_token": "[BOS]", "eos_token": "[|endofturn|]"}),
    "metharme": ("metharme.jinja", {"bos_token": "<s>", "eos_token": "</s>"}),
    "alpaca": ("alpaca.jinja", {"bos_token": "<s>", "eos_token": "</s>"}),
}

REFERENCE = Path(__file__).with_name("reference_templates")
REFERENCE_SOURCE = ("reference template transcribed from the model's published tokenizer_config.json; "
                    "not re-downloaded offline")
# lathe built-in -> (model, file under reference_templates/, special tokens its tokenizer passes).
TRANSCRIBED: dict[str, tuple[str, str, dict[str, str]]] = {
    "phi_4": ("microsoft/phi-4", "phi_4.jinja", {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>"}),
    "phi_4_mini": ("microsoft/Phi-4-mini-instruct", "phi_4_mini.jinja", {"eos_token": "<|endoftext|>"}),
}

SYSTEM = {"role": "system", "content": "You are terse."}
U1 = {"role": "user", "content": "Uppercase: red cat"}
A1 = {"role": "assistant", "content": "RED CAT"}
U2 = {"role": "user", "content": "And blue dog?"}
A2 = {"role": "assistant", "content": "BLUE DOG"}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}


def _tool_call(arguments: Any) -> dict[str, Any]:
    return {"id": "call12345", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def _tools_case(arguments: Any) -> dict[str, Any]:
    return {"messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [_tool_call(arguments)]},
        {"role": "tool", "tool_call_id": "call12345", "content": "22 C, sunny"},
        {"role": "assistant", "content": "It is 22 C and sunny."},
    ], "tools": [WEATHER_TOOL]}


CASES: dict[str, dict[str, Any]] = {
    "single": {"messages": [U1, A1]},
    "single_system": {"messages": [SYSTEM, U1, A1]},
    "multi": {"messages": [U1, A1, U2, A2]},
    "multi_system": {"messages": [SYSTEM, U1, A1, U2, A2]},
    "prompt": {"messages": [U1], "add_generation_prompt": True},
    "prompt_no_generation": {"messages": [U1]},
    "prompt_system": {"messages": [SYSTEM, U1], "add_generation_prompt": True},
    "multi_prompt": {"messages": [SYSTEM, U1, A1, U2], "add_generation_prompt": True},
    "whitespace": {"messages": [
        {"role": "system", "content": "  Be brief.\nAnswer in English.  "},
        {"role": "user", "content": "  line one\nline two  \n"},
        {"role": "assistant", "content": "\n  Answer:\n\n  42  \n"},
        {"role": "user", "content": " trailing "},
        {"role": "assistant", "content": " ok "},
    ]},
    "thinking": {"messages": [
        U1, {"role": "assistant", "content": "<think>\nUppercase each letter.\n</think>\n\nRED CAT"},
        U2, {"role": "assistant", "content": "<think>\nSame again.\n</think>\n\nBLUE DOG"},
    ]},
    "tools": _tools_case({"city": "Paris"}),
    "tools_string_arguments": _tools_case('{"city": "Paris"}'),
}

_PHI4_MINI_TOOLS = ('[{"name": "get_weather", "description": "Current weather in a city.", '
                    '"parameters": {"city": {"description": "The city", "type": "str"}}}]')
# Cases rendered for one template only (a format's own way of carrying something), by built-in.
EXTRA_CASES: dict[str, dict[str, dict[str, Any]]] = {
    "phi_4_mini": {"system_tools": {"messages": [
        {"role": "system", "content": "You are a helpful assistant with some tools.", "tools": _PHI4_MINI_TOOLS},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]'
                                         "<|/tool_call|>"},
        {"role": "tool", "content": '{"temperature": "22 C", "sky": "sunny"}'},
        {"role": "assistant", "content": "It is 22 C and sunny."},
    ]}},
}


def render(template: str, tokens: dict[str, str], case: dict[str, Any]) -> dict[str, str]:
    """``template`` rendered as ``apply_chat_template`` renders it, with the fixed clock; or its error."""
    from transformers.utils import chat_template_utils as ctu

    compiled = ctu._compile_jinja_template(template)
    messages = ctu._alias_reasoning_fields(ctu._plain_template_data(case["messages"]))
    try:
        text = compiled.render(messages=messages, tools=ctu._plain_template_data(case.get("tools")), documents=None,
                               add_generation_prompt=case.get("add_generation_prompt", False),
                               strftime_now=lambda fmt: FIXED_NOW.strftime(fmt), **tokens)
    except Exception as exc:  # the published template's own refusal, or an error of its code
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"text": text}


def _axolotl_names(enums: Path) -> list[str]:
    """The values of Axolotl's ``ChatTemplate`` enum (every name its ``chat_template`` accepts)."""
    body = enums.read_text().split("class ChatTemplate(", 1)[1].split("\nclass ", 1)[0]
    return re.findall(r'^    \w+ = "([^"]+)"', body, re.M)


def main(folder: Path, out: Path) -> None:
    import transformers

    goldens: dict[str, Any] = {
        "about": {
            "source": SOURCE,
            "rendered_with": f"transformers {transformers.__version__} chat_template_utils (as apply_chat_template)",
            "strftime_now": FIXED_NOW.isoformat(),
            "date": datetime.date.today().isoformat(),
            "script": "packages/lathe/tests/data/goldens/render_published_templates.py",
        },
        "axolotl_chat_template_names": _axolotl_names(folder.parents[1] / "schemas" / "enums.py"),
        "cases": CASES,
        "templates": {},
    }
    for name, (filename, tokens) in PUBLISHED.items():
        text = (folder / filename).read_text()
        variables = PUBLISHED_VARIABLES.get(name, {})
        goldens["templates"][name] = {
            "file": filename,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "tokens": tokens,
            "published_variables": variables,
            "renders": {case: render(text, {**tokens, **variables}, spec) for case, spec in CASES.items()},
        }
    for name, (model, filename, tokens) in TRANSCRIBED.items():
        text = (REFERENCE / filename).read_text()
        extra = EXTRA_CASES.get(name, {})
        goldens["templates"][name] = {
            "file": f"reference_templates/{filename}",
            "model": model,
            "source": REFERENCE_SOURCE,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "tokens": tokens,
            "published_variables": {},
            **({"extra_cases": extra} if extra else {}),
            "renders": {case: render(text, tokens, spec) for case, spec in {**CASES, **extra}.items()},
        }
    out.write_text(json.dumps(goldens, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("chat_templates.json"))
