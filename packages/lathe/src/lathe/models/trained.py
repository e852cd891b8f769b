"""Loading what ``lathe train`` saved in ``output_dir``: the full model, or base + adapter."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lathe.errors import LatheError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from lathe.config import Config
    from lathe.plugins import Plugins

ADAPTER_CONFIG = "adapter_config.json"


def trained_dir(cfg: Config) -> Path:
    out = Path(cfg.output_dir)
    if not ((out / ADAPTER_CONFIG).is_file() or (out / "config.json").is_file()):
        raise LatheError(f"output_dir {out} holds no trained model; run `lathe train` with this config first")
    return out


def has_adapter(cfg: Config) -> bool:
    return (Path(cfg.output_dir) / ADAPTER_CONFIG).is_file()


def load_trained(
    cfg: Config, plugins: Plugins, quantized: bool = True
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The trained model and its tokenizer from ``output_dir``.

    An adapter is loaded onto the base model, whose embeddings are first resized to the
    saved tokenizer. ``quantized=False`` loads the base unquantized (for merging).
    """
    from transformers import AutoConfig, AutoTokenizer

    from lathe.models.loading import (
        attention_backend,
        build_model,
        model_class,
        model_config,
        resize_embeddings,
        set_special_token_ids,
        weights_dtype,
    )

    out = trained_dir(cfg)
    plugins.call("lathe_pre_model_load", cfg=cfg)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    if has_adapter(cfg):
        from peft import PeftModel

        from lathe.models.adapters import check_adapter_weights

        check_adapter_weights(cfg, out, "output_dir")
        base_cfg = cfg if quantized else cfg.model_copy(update={"load_in_4bit": False, "load_in_8bit": False})
        base = build_model(base_cfg, model_config(cfg, plugins), plugins)  # random_init_weights rebuilds the same seeded base
        resize_embeddings(base, len(tokenizer))
        set_special_token_ids(base, tokenizer)
        model: torch.nn.Module = PeftModel.from_pretrained(base, str(out))
        plugins.call("lathe_post_adapter_load", cfg=cfg, model=model)
    else:
        model = model_class(cfg, AutoConfig.from_pretrained(str(out)), plugins).from_pretrained(
            str(out), dtype=weights_dtype(cfg), attn_implementation=attention_backend(cfg), use_safetensors=True
        )
    model.eval()
    return model, tokenizer
