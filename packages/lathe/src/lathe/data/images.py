"""Images in chat rows: finding them (Axolotl's field names), resolving where they are, loading them.

A message's ``content`` may be a list of parts: ``{"type": "text", "text": ...}`` and
``{"type": "image", ...}`` where the image is given by ``path`` (relative to the dataset file),
``url``, ``base64`` (plain or a ``data:`` URI) or ``image`` (any of those, or a decoded PIL
image from a hub dataset). A row's ``images`` (or ``image``) column fills the bare
``{"type": "image"}`` parts in order; an image with no such part is appended to the first user
message (as Axolotl does).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from pathlib import Path
from typing import Any, Literal

from lathe.errors import LatheError

IMAGE_KEYS = ("image", "path", "url", "base64")
IMAGE_COLUMNS = ("images", "image")
Resample = Literal["bilinear", "bicubic", "lanczos"]


def offline() -> bool:
    return any(os.environ.get(k, "0").lower() in {"1", "true", "yes", "on"}
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _parts(content: Any) -> list[dict[str, Any]]:
    """Content as a list of parts without the None fields Arrow adds to every part."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise LatheError(f"a message's content is {type(content).__name__}, not text or a list of parts")
    parts = []
    for part in content:
        if not isinstance(part, dict) or "type" not in part:
            raise LatheError(f"a content part {part!r} has no 'type' (text or image)")
        parts.append({k: v for k, v in part.items() if v is not None})
    return parts


def with_parts(messages: list[dict[str, Any]], content_key: str, columns: list[Any]) -> list[dict[str, Any]]:
    """Messages whose content is a list of parts, the row's image columns placed into them."""
    out = [{**m, content_key: _parts(m.get(content_key))} if m.get(content_key) is not None else dict(m)
           for m in messages]
    pending = list(columns)
    for message in out:
        for part in message.get(content_key) or []:
            if pending and part["type"] == "image" and not any(k in part for k in IMAGE_KEYS):
                part["image"] = pending.pop(0)
    if pending:
        users = [m for m in out if m.get("role") in ("user", "human")] or out[:1]
        if not users:
            raise LatheError("the row has images but no messages")
        users[0][content_key] = [*(users[0].get(content_key) or []), *({"type": "image", "image": i} for i in pending)]
    return out


def column_images(row: dict[str, Any]) -> list[Any]:
    for key in IMAGE_COLUMNS:
        value = row.get(key)
        if value is not None:
            return list(value) if isinstance(value, (list, tuple)) else [value]
    return []


def reference(part: dict[str, Any], base: Path | None) -> Any:
    """The image a part names: a resolved local Path, a URL string, decoded bytes, or a PIL image."""
    for key in IMAGE_KEYS:
        value = part.get(key)
        if value is None:
            continue
        if key == "base64":
            return _decode(value)
        if not isinstance(value, str):
            return value  # a PIL image (hub datasets decode their Image columns)
        if key == "url" or value.startswith(("http://", "https://")):
            if offline():
                raise LatheError(f"image {value!r} is a URL and HF_HUB_OFFLINE is set: download it and give its path")
            return value
        if value.startswith("data:"):
            return _decode(value.partition(",")[2])
        path = Path(value).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise LatheError(f"image file {str(path)!r} not found ({key}: {value!r}"
                             + (f", relative to {str(base)!r})" if base is not None else ")"))
        return path
    raise LatheError(f"an image part names no image (give one of {', '.join(IMAGE_KEYS)}, or an images column)")


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LatheError(f"an image's base64 is not valid: {exc}") from None


def load(ref: Any, size: int | tuple[int, int] | None, resample: Resample | None) -> Any:
    """An RGB PIL image, resized per ``image_size`` (int: padded square keeping the aspect ratio;
    (width, height): exactly that) with ``image_resize_algorithm`` (default bilinear)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        if isinstance(ref, (Path, bytes)):
            image = Image.open(io.BytesIO(ref) if isinstance(ref, bytes) else ref)
        elif isinstance(ref, str):
            from transformers.image_utils import load_image

            image = load_image(ref)
        else:
            image = ref
        image = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise LatheError(f"cannot read image {str(ref)[:200]!r}: {exc}") from None
    if size is None:
        return image
    method = getattr(Image.Resampling, (resample or "bilinear").upper())
    if isinstance(size, int):
        return ImageOps.pad(image, (size, size), method=method, color=(0, 0, 0))
    return image.resize(tuple(size), method)
