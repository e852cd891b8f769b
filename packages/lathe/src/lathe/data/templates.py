"""Built-in chat templates by name, written for lathe (Jinja, as ``tokenizer.chat_template``).

Each renders ``messages`` (role/content dicts) and honours ``add_generation_prompt``.
The special markers are those of the model family; they tokenize as text when the
tokenizer does not know them as special tokens.
"""

from __future__ import annotations

from lathe.errors import LatheError

_CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_QWEN = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}" + _CHATML
)

_LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

_MISTRAL = (
    "{{ bos_token }}"
    "{% set system = messages[0]['content'] + '\n\n' if messages[0]['role'] == 'system' else '' %}"
    "{% set loop_messages = messages[1:] if messages[0]['role'] == 'system' else messages %}"
    "{% for message in loop_messages %}"
    "{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + (system if loop.first else '') + message['content'] + ' [/INST]' }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)

_GEMMA = (
    "{{ bos_token }}"
    "{% set system = messages[0]['content'] + '\n\n' if messages[0]['role'] == 'system' else '' %}"
    "{% set loop_messages = messages[1:] if messages[0]['role'] == 'system' else messages %}"
    "{% for message in loop_messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (system if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

_PHI = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

BUILTIN_TEMPLATES: dict[str, str] = {
    "chatml": _CHATML,
    "qwen": _QWEN,
    "llama3": _LLAMA3,
    "mistral": _MISTRAL,
    "gemma": _GEMMA,
    "phi": _PHI,
}


def resolve_chat_template(name: str | None, jinja: str | None, tokenizer_template: str | None) -> str | None:
    """The template text a config names: ``tokenizer_default``, a built-in name, or ``jinja``.

    ``None`` (the key unset) keeps the tokenizer's own template.
    """
    if name is None or name == "tokenizer_default":
        if name is not None and not tokenizer_template:
            raise LatheError("chat_template: tokenizer_default, but the tokenizer has no chat template; "
                             f"name a built-in ({', '.join(BUILTIN_TEMPLATES)}) or set chat_template_jinja")
        return tokenizer_template
    if name == "tokenizer_default_fallback_chatml":
        return tokenizer_template or _CHATML
    if name == "jinja":
        if not jinja:
            raise LatheError("chat_template: jinja needs chat_template_jinja (the template text)")
        return jinja
    if name in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[name]
    from difflib import get_close_matches

    close = get_close_matches(name, [*BUILTIN_TEMPLATES, "tokenizer_default", "jinja"], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise LatheError(f"chat_template: unknown template {name!r}{hint} "
                     f"(built-ins: {', '.join(BUILTIN_TEMPLATES)}, tokenizer_default, jinja)")
