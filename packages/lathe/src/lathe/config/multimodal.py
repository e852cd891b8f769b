"""Vision-language keys: the processor, image resizing, freezing the vision modules (docs/multimodal.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from lathe.config.base import ConfigModel
from lathe.config.fields import data_field


class MultimodalSection(ConfigModel):
    processor_type: str | None = data_field(
        description="transformers processor class to load with (e.g. AutoProcessor); a vision-language model "
        "uses AutoProcessor when unset. Setting it on a text-only model is an error.")
    processor_kwargs: dict[str, Any] | None = data_field(
        description="Keyword arguments of the processor's from_pretrained (e.g. min_pixels, image_seq_length).")
    image_size: int | tuple[int, int] | None = data_field(
        description="Resize images before the processor: an int pads to a square of that side keeping the aspect "
        "ratio, [width, height] resizes to exactly that; unset: images reach the processor as they are (it resizes).")
    image_resize_algorithm: Literal["bilinear", "bicubic", "lanczos"] | None = data_field(
        description="Resampling used by image_size (default bilinear).")
    freeze_mm_modules: bool | None = Field(
        None, description="Freeze the vision (and audio) towers and the multimodal projector; only the language "
        "model trains.")
    skip_prepare_dataset: bool = data_field(
        False, description="Tokenize per batch in the collator instead of preparing a cached dataset; always so "
        "for vision-language models (images are loaded and processed per batch, never cached).")

    @field_validator("image_resize_algorithm", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("image_size")
    @classmethod
    def _positive(cls, value: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
        sides = (value,) if isinstance(value, int) else value or ()
        if any(side < 1 for side in sides):
            raise ValueError("image_size: sides must be positive")
        return value
