"""``lathe inference --image`` and merging for vision-language models: the saved processor does the work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.config import Config

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def has_processor(folder: Path) -> bool:
    return any((folder / name).is_file() for name in PROCESSOR_FILES)


def save_processor(source: Path, target: Path) -> None:
    """Copy the processor saved with a trained model (a vision-language run) next to its merged weights."""
    if has_processor(source):
        from transformers import AutoProcessor

        AutoProcessor.from_pretrained(str(source)).save_pretrained(str(target))


@dataclass
class VisionPrompter:
    """Prompts for a vision-language model: the processor's chat template, the images in the first user turn."""

    processor: Any
    images: list[Any]

    @classmethod
    def of(cls, cfg: Config, model: Any, paths: tuple[str, ...]) -> VisionPrompter | None:
        """The prompter for the model in ``output_dir``; None for a text model (``--image`` is then an error)."""
        from lathe.models.vision import is_multimodal

        config = getattr(model, "config", None)
        if config is None or not is_multimodal(config):
            if paths:
                raise LatheError(f"--image: the model in {cfg.output_dir} is a text model")
            return None
        out = Path(cfg.output_dir)
        if not has_processor(out):
            raise LatheError(f"output_dir {out} has no saved processor; train it again with this lathe version")
        from transformers import AutoProcessor

        from lathe.data import images as imgs

        pictures = []
        for path in paths:
            try:
                ref = imgs.reference({"type": "image", "path": path}, Path.cwd())
            except LatheError as exc:
                raise LatheError(f"--image: {exc}") from None
            pictures.append(imgs.load(ref, cfg.image_size, cfg.image_resize_algorithm))
        return cls(AutoProcessor.from_pretrained(str(out)), pictures)

    def encode(self, history: list[dict[str, Any]], prompt: str) -> tuple[str, Any]:
        """The generation prompt's text and the processor's tensors (ids, pixels) for it."""
        turns = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in history]
        turns.append({"role": "user", "content": [{"type": "text", "text": prompt}]})
        if self.images:
            turns[0]["content"] = [*({"type": "image"} for _ in self.images), *turns[0]["content"]]
        text = self.processor.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
        kwargs = {"images": [self.images]} if self.images else {}
        return text, self.processor(text=[text], return_tensors="pt", add_special_tokens=False, **kwargs)
