"""Images in chat rows: Axolotl's ways of naming them, resizing, and the errors users meet."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from lathe.data import images
from lathe.errors import LatheError
from lathe.testing.vision import write_image


def test_paths_are_relative_to_the_dataset_file_and_base64_decodes(tmp_path: Path) -> None:
    png = write_image(tmp_path / "img" / "a.png", size=20)
    assert images.reference({"type": "image", "path": "img/a.png"}, tmp_path) == png
    assert images.reference({"type": "image", "image": str(png)}, None) == png
    encoded = base64.b64encode(png.read_bytes()).decode()
    for part in ({"type": "image", "base64": encoded}, {"type": "image", "image": f"data:image/png;base64,{encoded}"}):
        loaded = images.load(images.reference(part, None), None, None)
        assert loaded.size == (20, 20) and loaded.mode == "RGB"


def test_urls_are_refused_offline_and_bad_base64_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LatheError, match="is a URL and HF_HUB_OFFLINE is set"):
        images.reference({"type": "image", "url": "https://example.com/a.png"}, None)
    with pytest.raises(LatheError, match="base64 is not valid"):
        images.reference({"type": "image", "base64": "not base64!"}, None)


def test_image_size_pads_an_int_to_a_square_and_resizes_a_pair_exactly(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "wide.png"
    Image.new("RGB", (40, 20), (255, 255, 255)).save(path)
    square = images.load(path, 30, "bicubic")
    assert square.size == (30, 30)
    assert square.getpixel((15, 0)) == (0, 0, 0) and square.getpixel((15, 15)) == (255, 255, 255)  # padded black
    assert images.load(path, (14, 28), None).size == (14, 28)


def test_an_images_column_fills_bare_image_parts_or_joins_the_first_user_turn() -> None:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    filled = images.with_parts(messages, "content", ["a.png"])
    assert filled[0]["content"][0] == {"type": "image", "image": "a.png"}
    plain = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    joined = images.with_parts(plain, "content", ["b.png"])
    assert joined[0]["content"] == [{"type": "text", "text": "hi"}, {"type": "image", "image": "b.png"}]
