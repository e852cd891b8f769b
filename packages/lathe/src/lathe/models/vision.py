"""Vision-language models: recognising one, its processor, and which modules are not the language model.

A model is vision-language when its config has a ``vision_config`` (every image-text-to-text
family in transformers has one). Its non-language modules (vision tower, projector, audio
tower) are found by their attribute names, which transformers' families share.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from lathe.config import Config

# attribute names of non-language modules in transformers' vision-language families
TOWERS = ("visual", "vision_tower", "vision_model", "audio_tower", "embed_vision", "embed_audio")
PROJECTORS = ("multi_modal_projector", "mm_projector", "connector")


def is_multimodal(config: PretrainedConfig) -> bool:
    return getattr(config, "vision_config", None) is not None


def require_pillow(what: str) -> None:
    try:
        import PIL  # noqa: F401
    except ImportError as exc:
        raise LatheError(f"{what} needs Pillow to read images: pip install 'lathe[vision]'") from exc


def check_multimodal_keys(cfg: Config, config: PretrainedConfig) -> None:
    """Keys that need a vision-language model, and what such a model cannot do (yet)."""
    if is_multimodal(config):
        require_pillow(f"{type(config).__name__} (a vision-language model)")
        if cfg.sample_packing:
            raise LatheError(f"sample_packing: packing batches with images is not available for "
                             f"{config.model_type}; set sample_packing: false")
        return
    given = [k for k in ("processor_type", "processor_kwargs", "image_size", "image_resize_algorithm",
                         "freeze_mm_modules") if getattr(cfg, k) is not None]
    if cfg.skip_prepare_dataset:
        given.append("skip_prepare_dataset")
    if given:
        raise LatheError(f"{', '.join(given)}: base_model {cfg.base_model!r} ({config.model_type}) is not a "
                         "vision-language model (its config has no vision_config); these keys apply to one")


def load_processor(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> Any:
    """``processor_type`` (default AutoProcessor) from the base model, around lathe's tokenizer."""
    import transformers

    name = cfg.processor_type or "AutoProcessor"
    cls = getattr(transformers, name, None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        raise LatheError(f"processor_type: transformers {transformers.__version__} has no processor class {name}")
    source = cfg.tokenizer_config or cfg.base_model
    try:
        processor = cls.from_pretrained(source, trust_remote_code=cfg.trust_remote_code,
                                        revision=cfg.revision_of_model, token=cfg.hub_token,
                                        **(cfg.processor_kwargs or {}))
    except (OSError, ValueError, TypeError, ImportError) as exc:
        raise LatheError(f"processor_type: could not load {name} from {source!r}: {exc}") from exc
    if not hasattr(processor, "image_processor"):
        raise LatheError(f"processor_type: {name} from {source!r} loaded a {type(processor).__name__}, which has "
                         "no image processor; name the model's processor class (or AutoProcessor)")
    processor.tokenizer = tokenizer
    return processor


def image_token_ids(processor: Any, config: PretrainedConfig) -> set[int]:
    """Ids that stand for image content: never trained."""
    ids = {getattr(processor, "image_token_id", None)}
    ids |= {getattr(config, k, None) for k in ("image_token_id", "image_token_index")}
    return {int(i) for i in ids if isinstance(i, int)}


def non_language_modules(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Full name → module of each vision/audio tower and projector (outermost only)."""
    found: dict[str, torch.nn.Module] = {}
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in TOWERS + PROJECTORS and not any(name.startswith(f"{outer}.") for outer in found):
            found[name] = module
    return found


def freeze_mm_modules(cfg: Config, model: torch.nn.Module) -> None:
    """``freeze_mm_modules: true``: towers and projectors get no gradient."""
    if not cfg.freeze_mm_modules:
        return
    modules = non_language_modules(model)
    if not modules:
        raise LatheError("freeze_mm_modules: found no vision/audio tower or projector in this model")
    frozen = 0
    for module in modules.values():
        for param in module.parameters():
            param.requires_grad_(False)
            frozen += param.numel()
    print(f"lathe: freeze_mm_modules: froze {', '.join(modules)} ({frozen:,} parameters)", file=sys.stderr)


def language_lora_targets(model: torch.nn.Module, names: list[str] | None) -> str:
    """A peft target regex: the linear layers named ``names`` (every linear one when None) outside the
    towers and projectors, and never the output head. A regex ``lora_target_modules`` is used as given."""
    import torch

    outside = tuple(f"{n}." for n in non_language_modules(model))
    output = model.get_output_embeddings()  # type: ignore[operator]
    leaves = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                     if isinstance(m, torch.nn.Linear) and m is not output and not n.startswith(outside)})
    wanted = leaves if names is None else [n for n in names if n in leaves]
    if not wanted:
        raise LatheError(f"lora_target_modules: none of {names} is a linear layer of the language model "
                         f"(its linear layers: {', '.join(leaves)})")
    skip = "|".join(re.escape(prefix) for prefix in outside)
    guard = f"(?!{skip})" if skip else ""
    return rf"^{guard}(?:.*\.)?(?:{'|'.join(map(re.escape, wanted))})$"
