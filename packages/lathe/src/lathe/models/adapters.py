"""LoRA / QLoRA adapters through peft: a new adapter from the config, or a saved one to continue."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lathe.errors import LatheError
from lathe.models.loading import CLASSIFIER_HEADS, classifier_task
from lathe.models.vision import is_multimodal, language_lora_targets

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import PreTrainedModel

    from lathe.config import Config


def embedding_module_names(model: PreTrainedModel) -> list[str]:
    """Names (last path component) of the input and untied output embedding modules."""
    names = []
    modules = {id(m): n.rsplit(".", 1)[-1] for n, m in model.named_modules()}
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is not None and id(module) in modules and modules[id(module)] not in names:
            names.append(modules[id(module)])
    return names


def modules_to_save(cfg: Config, model: PreTrainedModel, new_tokens: bool) -> list[str] | None:
    """``lora_modules_to_save``, plus the embeddings when the vocabulary grew.

    New tokens' embedding rows must be trained and saved with the adapter, or merging
    the adapter into a base of the original size fails (and the new tokens stay random).
    """
    chosen = list(cfg.lora_modules_to_save or [])
    if new_tokens:
        missing = [n for n in embedding_module_names(model) if n not in chosen]
        if missing:
            print(
                f"lathe: tokens were added to the vocabulary, so {', '.join(missing)} are trained and saved "
                "with the adapter (lora_modules_to_save)",
                file=sys.stderr,
            )
            chosen += missing
    return chosen or None


def lora_config(cfg: Config, model: PreTrainedModel, new_tokens: bool) -> LoraConfig:
    from peft import LoraConfig

    if cfg.lora_target_linear:
        targets: list[str] | str | None = "all-linear"
    else:
        targets = cfg.lora_target_modules
    if is_multimodal(model.config) and (not isinstance(targets, str) or targets == "all-linear"):
        # a vision-language model: names and all-linear reach the language model only (a regex reaches anything)
        targets = language_lora_targets(model, None if targets in (None, "all-linear") else list(targets or []))
    optional = {
        "target_parameters": cfg.lora_target_parameters,
        "rank_pattern": cfg.lora_rank_pattern,
        "alpha_pattern": cfg.lora_alpha_pattern,
        "layers_pattern": cfg.peft_layers_pattern,
        "layer_replication": cfg.peft_layer_replication,
        "init_lora_weights": cfg.peft_init_lora_weights,
        "trainable_token_indices": cfg.peft_trainable_token_indices,
        "ensure_weight_tying": cfg.peft_ensure_weight_tying,
    }
    classifier = classifier_task(type(model).__name__)
    return LoraConfig(
        **{k: v for k, v in optional.items() if v is not None},
        # a classification head (a reward model's, from a plugin's lathe_model_class): peft trains and saves
        # the new layer whole with the adapter (modules_to_save); all-linear never wraps it in LoRA
        task_type=classifier or "CAUSAL_LM",
        exclude_modules=CLASSIFIER_HEADS if classifier else None,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        modules_to_save=modules_to_save(cfg, model, new_tokens),
        fan_in_fan_out=bool(cfg.lora_fan_in_fan_out),
        use_dora=cfg.peft_use_dora,
        use_rslora=cfg.peft_use_rslora,
        layers_to_transform=cfg.peft_layers_to_transform,
    )


def check_adapter_weights(cfg: Config, folder: Path, key: str) -> None:
    """The weights policy for adapters: safetensors only, unless ``allow_pickle_weights``.

    A pickle (``adapter_model.bin``) runs code when it is loaded, so it is refused unless the
    user says the file is trusted; peft would otherwise fall back to it silently.
    """
    if (folder / "adapter_model.safetensors").is_file() or cfg.allow_pickle_weights:
        return
    pickled = [p.name for p in folder.glob("adapter_model*.bin")] + [p.name for p in folder.glob("adapter_model*.pt")]
    if pickled:
        raise LatheError(
            f"{key}: {str(folder)!r} holds only pickle adapter weights ({', '.join(sorted(pickled))}); only "
            "safetensors are loaded: set allow_pickle_weights: true for files you trust"
        )
    raise LatheError(f"{key}: {str(folder)!r} holds no adapter_model.safetensors")


def attach_adapter(cfg: Config, model: PreTrainedModel, new_tokens: bool) -> torch.nn.Module:
    """Wrap ``model`` in a trainable peft adapter: continued from ``lora_model_dir`` or new."""
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training

    if cfg.load_in_4bit or cfg.load_in_8bit:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(cfg.gradient_checkpointing)
        )
    autocast = cfg.peft_autocast_adapter_dtype is not False  # PEFT upcasts adapters to float32 unless told not to
    if cfg.lora_model_dir:
        if not (Path(cfg.lora_model_dir) / "adapter_config.json").is_file():
            raise LatheError(f"lora_model_dir: {cfg.lora_model_dir!r} holds no adapter_config.json")
        check_adapter_weights(cfg, Path(cfg.lora_model_dir), "lora_model_dir")
        peft_model = PeftModel.from_pretrained(
            model, cfg.lora_model_dir, is_trainable=True, autocast_adapter_dtype=autocast
        )
    else:
        try:
            peft_model = get_peft_model(model, lora_config(cfg, model, new_tokens), autocast_adapter_dtype=autocast)
        except ValueError as exc:
            raise LatheError(f"lora_target_modules: {exc}") from exc
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    print(f"lathe: adapter {cfg.adapter}: {trainable:,} of {total:,} parameters trainable "
          f"({100 * trainable / max(total, 1):.2f}%)", file=sys.stderr)
    return peft_model
