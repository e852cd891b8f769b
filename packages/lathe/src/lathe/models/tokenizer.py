"""Loading the tokenizer a run trains with: special and added tokens, pad token, chat template.

The model's embeddings are resized to ``len(tokenizer)`` after this (``lathe.models.loading``).
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from lathe.data.templates import builtin, resolve_chat_template
from lathe.data.templates.compare import first_difference
from lathe.errors import LatheError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from lathe.config import Config
    from lathe.plugins import Plugins

# Tokens commonly shipped as dedicated padding tokens, tried before falling back to unk/eos.
_PAD_CANDIDATES = ("<|pad|>", "<pad>", "[PAD]", "<|finetune_right_pad_id|>", "<|endoftext|>")


class TokenizerWarning(UserWarning):
    """A tokenizer setting that may silently hurt training (pad = eos, a missing pad token)."""


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


def _set_pad_token(tok: PreTrainedTokenizerBase) -> None:
    """Give a tokenizer without a pad token one, preferring a dedicated or unk token over EOS."""
    vocab = tok.get_vocab()
    for candidate in _PAD_CANDIDATES:
        if candidate in vocab and candidate != tok.eos_token:
            tok.pad_token = candidate
            break
    else:
        if tok.unk_token is not None:
            tok.pad_token = tok.unk_token
        elif tok.eos_token is not None:
            tok.pad_token = tok.eos_token
        else:
            tok.add_special_tokens({"pad_token": "<|pad|>"})
    warnings.warn(f"the tokenizer has no pad token; using {tok.pad_token!r}", TokenizerWarning, stacklevel=3)


def _warn_replaced_template(name: str, tok: PreTrainedTokenizerBase, template: str) -> None:
    """Warn that ``chat_template`` replaces the tokenizer's own; for a built-in, only where the two
    render the probe conversations differently, showing the first difference."""
    detail = ""
    if builtin(name) is not None:
        difference = first_difference(tok, template, tok.chat_template)
        if difference is None:
            return
        detail = f", and renders conversations differently: {difference}"
    warnings.warn(
        f"chat_template: {name} replaces the tokenizer's own template{detail}. The template used for "
        "training is saved with the outputs",
        TokenizerWarning,
        stacklevel=3,
    )


def tokenizer_class(name: str | None) -> type:
    """The transformers class ``tokenizer_type`` names (``AutoTokenizer`` when unset), as Axolotl."""
    import transformers

    cls = getattr(transformers, name or "AutoTokenizer", None)
    if not isinstance(cls, type) or not hasattr(cls, "from_pretrained") or "Tokenizer" not in cls.__name__:
        raise LatheError(f"tokenizer_type: {name!r} is not a tokenizer class of transformers "
                         "(e.g. AutoTokenizer, PreTrainedTokenizerFast, LlamaTokenizerFast)")
    return cls


def load_mistral_common(cfg: Config) -> PreTrainedTokenizerBase:
    """transformers' mistral-common backed tokenizer, from the tokenizer file (``tekken.json`` or
    ``tokenizer.model.v*``) in the tokenizer path, validating requests as fine-tuning data (a
    conversation ends with an assistant turn). It has no chat template: its request encoding is one."""
    import importlib.util

    if importlib.util.find_spec("mistral_common") is None:
        raise LatheError("tokenizer_use_mistral_common needs the mistral_common package: pip install mistral-common "
                         "(or pip install 'lathe[mistral]')")
    from transformers.tokenization_mistral_common import MistralCommonBackend

    source = cfg.tokenizer_config or cfg.base_model
    key = "tokenizer_config" if cfg.tokenizer_config else "base_model"
    try:
        return MistralCommonBackend.from_pretrained(source, mode="finetuning", local_files_only=os.path.isdir(source) or _offline(),
                                                    revision=cfg.revision_of_model or "main", token=cfg.hub_token)
    except (OSError, ValueError, ImportError) as exc:
        raise LatheError(f"{key}: cannot load a mistral-common tokenizer (tekken.json or tokenizer.model.v*) from "
                         f"{source!r}: {exc}") from None


def load_tokenizer(cfg: Config, plugins: Plugins) -> PreTrainedTokenizerBase:
    """The run's tokenizer, with the config's tokens and template applied and plugins' hook fired.

    Padding never decides the labels (the collator pads labels with -100 by position), so a
    pad token equal to EOS does not mask the EOS that ends an assistant turn; it is still
    warned about because other tools and inference code may treat pad as "ignore".
    """
    if cfg.tokenizer_use_mistral_common:
        tok = load_mistral_common(cfg)
        plugins.call("lathe_post_tokenizer_load", cfg=cfg, tokenizer=tok)
        return tok
    source = cfg.tokenizer_config or cfg.base_model
    local = os.path.isdir(source)
    try:
        tok = tokenizer_class(cfg.tokenizer_type).from_pretrained(
            source,
            use_fast=cfg.tokenizer_use_fast,
            trust_remote_code=cfg.trust_remote_code,
            local_files_only=local or _offline(),
            token=cfg.hub_token,
        )
    except (OSError, ValueError) as exc:
        key = "tokenizer_config" if cfg.tokenizer_config else "base_model"
        raise LatheError(f"{key}: cannot load a tokenizer from {source!r}: {exc}") from None

    if cfg.special_tokens:
        tok.add_special_tokens(dict(cfg.special_tokens))
    if cfg.tokens:
        tok.add_tokens(list(cfg.tokens))
    if tok.pad_token is None:
        _set_pad_token(tok)
    if tok.pad_token_id is not None and tok.pad_token_id == tok.eos_token_id:
        warnings.warn(
            f"pad token equals eos token ({tok.eos_token!r}); lathe masks padding by position, so the "
            "EOS ending each assistant turn is still trained, but set special_tokens.pad_token to a "
            "distinct token for other tools' sake",
            TokenizerWarning,
            stacklevel=2,
        )

    template = resolve_chat_template(cfg.chat_template, cfg.chat_template_jinja, tok.chat_template)
    if cfg.chat_template and tok.chat_template and template != tok.chat_template:
        _warn_replaced_template(cfg.chat_template, tok, template)
    tok.chat_template = template

    plugins.call("lathe_post_tokenizer_load", cfg=cfg, tokenizer=tok)
    return tok
