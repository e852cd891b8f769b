"""lathe hook implementations for masked diffusion language modelling."""

from __future__ import annotations

from typing import Any

from lathe.hookspecs import hookimpl
from lathe_diffusion.config import DiffusionConfig

_BIDIRECTIONAL_BACKENDS = ("eager", "sdpa")


@hookimpl
def lathe_config_model() -> type[DiffusionConfig]:
    return DiffusionConfig


@hookimpl
def lathe_validate_config(cfg: Any) -> list[str]:
    backend = cfg.attn_implementation
    if backend is not None and backend not in _BIDIRECTIONAL_BACKENDS:
        return [f"attn_implementation: {backend} cannot take diffusion's bidirectional block mask; "
                f"use one of {', '.join(_BIDIRECTIONAL_BACKENDS)}"]
    return []


@hookimpl
def lathe_post_tokenizer_load(cfg: Any, tokenizer: Any) -> None:
    """Add the mask token (as a special token) when the tokenizer lacks it."""
    token = cfg.diffusion.mask_token
    if token is not None and token not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"extra_special_tokens": [token]}, replace_extra_special_tokens=False)


@hookimpl
def lathe_trainer_cls(cfg: Any) -> Any:
    from lathe_diffusion.trainer import trainer_for

    return trainer_for(cfg.diffusion)


@hookimpl
def lathe_generate(cfg: Any, model: Any, tokenizer: Any, prompt: str) -> str:
    from lathe_diffusion.infer import fill

    return fill(cfg.diffusion, model, tokenizer, prompt)


@hookimpl
def lathe_inference_commands(cfg: Any) -> dict[str, Any]:
    """``:complete N text`` and ``:mask R text`` in ``lathe inference``."""
    from lathe_diffusion.infer import commands

    return commands(cfg.diffusion)
