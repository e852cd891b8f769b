"""Tiny random-init vision-language models of three families, with processors built offline.

Each family's processor is its real transformers class, made of the family's image processor
(sized for 28×28 images) and :func:`lathe.testing.tiny_tokenizer` with the family's special
image tokens added, and a chat template in the family's layout (image parts become the
family's image placeholder). ``write_tiny_vlm(path, family)`` saves model + processor in the
layout of a hub checkpoint, so ``base_model: path`` loads it like a real one.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

Family = Literal["qwen2_vl", "gemma3_vision", "llava"]
FAMILIES: tuple[Family, ...] = ("qwen2_vl", "gemma3_vision", "llava")
IMAGE_SIZE = 28  # two 14-pixel patches a side: the smallest image every family here accepts

_PARTS = (
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ IMAGE }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
)
_TEMPLATES: dict[Family, str] = {
    # Qwen2-VL: ChatML, each image a vision_start / image_pad / vision_end triple
    "qwen2_vl": (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        + _PARTS.replace("{{ IMAGE }}", "<|vision_start|><|image_pad|><|vision_end|>")
        + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    # Gemma 3: start_of_turn/end_of_turn, the assistant is "model", an image is <start_of_image>
    "gemma3_vision": (
        "{% for message in messages %}<start_of_turn>"
        "{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
        + _PARTS.replace("{{ IMAGE }}", "<start_of_image>")
        + "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
    # Llava 1.5: "USER: <image>\n... ASSISTANT: ...", the assistant turn ended by EOS
    "llava": (
        "{% for message in messages %}{{ message['role'].upper() }}: "
        + _PARTS.replace("{{ IMAGE }}", "<image>\n")
        + "{{ eos_token if message['role'] == 'assistant' else ' ' }}"
        "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    ),
}
_SPECIAL: dict[Family, list[str]] = {
    "qwen2_vl": ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
    "gemma3_vision": ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"],
    "llava": ["<image>"],
}
_TEXT: dict[str, Any] = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=2048, tie_word_embeddings=False,
)
_VISION: dict[str, Any] = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
    image_size=IMAGE_SIZE, patch_size=14,
)


def tiny_vlm_tokenizer(family: Family):  # type: ignore[no-untyped-def]
    """The tiny tokenizer with the family's special tokens and its chat template."""
    from lathe.testing.tokenizer import tiny_tokenizer

    if family not in _TEMPLATES:
        raise ValueError(f"unknown tiny VLM family {family!r}; use one of {', '.join(FAMILIES)}")
    tok = tiny_tokenizer(eos_token="<end_of_turn>" if family == "gemma3_vision" else "<|im_end|>")
    extra = {"image_token": "<|image_pad|>"} if family == "qwen2_vl" else {}
    if family == "gemma3_vision":
        extra = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    if family == "llava":
        extra = {"image_token": "<image>"}
    tok.add_special_tokens({"additional_special_tokens": _SPECIAL[family]}, replace_extra_special_tokens=False)
    tok._set_model_specific_special_tokens(extra)  # named tokens (tok.image_token, ...), saved with the tokenizer
    tok.chat_template = _TEMPLATES[family]
    return tok


def tiny_vlm_processor(family: Family, tokenizer: Any = None):  # type: ignore[no-untyped-def]
    """The family's transformers processor around the tiny tokenizer, for 28×28 images."""
    import transformers

    tok = tokenizer if tokenizer is not None else tiny_vlm_tokenizer(family)
    template = _TEMPLATES[family]
    if family == "qwen2_vl":
        images = transformers.Qwen2VLImageProcessorPil(
            min_pixels=IMAGE_SIZE * IMAGE_SIZE, max_pixels=IMAGE_SIZE * IMAGE_SIZE, patch_size=14, merge_size=2,
            temporal_patch_size=2)
        return image_only_qwen2_vl_processor()(image_processor=images, tokenizer=tok, chat_template=template)
    if family == "gemma3_vision":
        images = transformers.Gemma3ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
        return transformers.Gemma3Processor(images, tok, chat_template=template, image_seq_length=1)
    images = transformers.CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return transformers.LlavaProcessor(
        image_processor=images, tokenizer=tok, chat_template=template, patch_size=14,
        vision_feature_select_strategy="default", num_additional_image_tokens=1)


@functools.cache
def image_only_qwen2_vl_processor() -> type:
    """Qwen2-VL's processor without its video half, registered with ``AutoProcessor`` by name.

    transformers builds Qwen2-VL's video processor only with torchvision, whose wheels need a
    CUDA build of torch; images alone need neither. The registration is keyed by a config class
    of lathe's own, so real Qwen2-VL checkpoints still load their own processor.
    """
    import transformers

    class LatheImageOnlyQwen2VLProcessor(transformers.Qwen2VLProcessor):  # type: ignore[misc]
        def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None,
                     **kwargs: Any) -> None:
            self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
            self.video_token = "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            transformers.ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    class _Key(transformers.PretrainedConfig):  # type: ignore[misc]
        model_type = "lathe_image_only_qwen2_vl"

    transformers.AutoProcessor.register(_Key, LatheImageOnlyQwen2VLProcessor, exist_ok=True)
    return LatheImageOnlyQwen2VLProcessor


def tiny_vlm_config(family: Family, tokenizer: Any):  # type: ignore[no-untyped-def]
    """A config of the family: 2 text layers (hidden 64) and a 1-layer vision tower (hidden 32)."""
    import transformers

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _SPECIAL[family]}
    text = {**_TEXT, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id, "bos_token_id": tokenizer.bos_token_id}
    if family == "qwen2_vl":
        vision = dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, patch_size=14, spatial_merge_size=2,
                      temporal_patch_size=2)
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
        return transformers.Qwen2VLConfig(
            text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=False)
    if family == "gemma3_vision":
        text.update(head_dim=16, sliding_window=64, query_pre_attn_scalar=16)
        return transformers.Gemma3Config(
            text_config=text, vision_config={**_VISION, "vision_use_head": False}, mm_tokens_per_image=1,
            boi_token_index=ids["<start_of_image>"], eoi_token_index=ids["<end_of_image>"],
            image_token_index=ids["<image_soft_token>"], tie_word_embeddings=False)
    return transformers.LlavaConfig(
        text_config={**text, "model_type": "llama"}, vision_config={**_VISION, "model_type": "clip_vision_model"},
        image_token_index=ids["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-1,
        projector_hidden_act="gelu", tie_word_embeddings=False)


def tiny_vlm(family: Family, tokenizer: Any = None, seed: int = 0):  # type: ignore[no-untyped-def]
    """A randomly initialised float32 model of the family (an image-text-to-text class)."""
    import torch
    from transformers import AutoModelForImageTextToText

    tok = tokenizer if tokenizer is not None else tiny_vlm_tokenizer(family)
    torch.manual_seed(seed)
    return AutoModelForImageTextToText.from_config(tiny_vlm_config(family, tok), dtype=torch.float32)


def write_tiny_vlm(path: str | Path, family: Family, seed: int = 0) -> Path:
    """Save a tiny VLM with its processor (and tokenizer) to ``path``; usable as ``base_model``."""
    path = Path(path)
    processor = tiny_vlm_processor(family)
    tiny_vlm(family, processor.tokenizer, seed=seed).save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path


def write_image(path: str | Path, color: tuple[int, int, int] = (200, 30, 30), size: int = IMAGE_SIZE) -> Path:
    """A small solid-colour PNG (Pillow) at ``path``."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)
    return path


def vision_rows(n: int = 8, image: str = "images/red.png") -> list[dict[str, Any]]:
    """Chat rows in Axolotl's multimodal format: a user turn with an image part and a question,
    and the assistant's answer."""
    return [{"messages": [
        {"role": "user", "content": [{"type": "image", "path": image}, {"type": "text", "text": "what colour is it"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "red"}]},
    ]} for _ in range(n)]


def vision_config(tmp_path: str | Path, family: Family, **overrides: Any) -> dict[str, Any]:
    """A complete small config in ``tmp_path``: a tiny VLM of ``family``, rows with a local image
    (a path relative to the data file), a few CPU steps."""
    from lathe.testing.data import write_jsonl
    from lathe.testing.run import short_run

    tmp_path = Path(tmp_path)
    model_dir = tmp_path / f"vlm-{family}"
    if not (model_dir / "config.json").exists():
        write_tiny_vlm(model_dir, family)
    data = tmp_path / "data" / "vision.jsonl"
    if not data.exists():
        write_image(data.parent / "images" / "red.png")
        write_jsonl(vision_rows(), data)
    cfg: dict[str, Any] = {
        "base_model": str(model_dir),
        "processor_type": "AutoProcessor",
        "skip_prepare_dataset": True,
        "remove_unused_columns": False,
        "sample_packing": False,
        "datasets": [{"path": str(data), "type": "chat_template"}],
        **short_run(tmp_path),
        "micro_batch_size": 2,
        "max_steps": 2,
    }
    cfg.update(overrides)
    return cfg
