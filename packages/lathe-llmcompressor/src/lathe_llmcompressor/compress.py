"""``save_compressed``: the saved model rewritten in compressed-tensors' sparse format.

The targeted weights are stored with compressed-tensors' own compressors: each one as
its non-zero values, a bitmask of their positions and row offsets (``sparse-bitmask``),
or, when every targeted weight is 2:4 sparse, as two values of every four with their
mask (``sparse-24-bitmask``). ``config.json`` gets compressed-tensors'
``quantization_config`` (``quant_method: compressed-tensors`` and a ``sparsity_config``
naming the format, structure, global sparsity and compressed modules), as LLM
Compressor writes it. :func:`load_compressed` reads such a folder back to a dense model.

The sparse compressors live in compressed-tensors up to 0.13 (0.14 pins transformers<5,
later versions dropped them), hence the dependency range of this package.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lathe.errors import LatheError

if TYPE_CHECKING:
    import torch

INDEX = "model.safetensors.index.json"
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class CompressedSave:
    format: str
    modules: int
    dense_bytes: int
    compressed_bytes: int
    target_dense_bytes: int
    target_compressed_bytes: int


def _compressors():  # type: ignore[no-untyped-def]
    try:
        from compressed_tensors.compressors import ModelCompressor
        from compressed_tensors.config import BitmaskConfig, Sparse24BitMaskConfig
    except ImportError as exc:
        raise LatheError(
            "llmcompressor.save_compressed needs compressed-tensors with its sparse compressors: "
            "pip install 'compressed-tensors>=0.12,<0.14'"
        ) from exc
    return ModelCompressor, BitmaskConfig, Sparse24BitMaskConfig


def weight_files(folder: Path) -> list[Path]:
    index = folder / INDEX
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [folder / n for n in names]
    if (folder / WEIGHTS).is_file():
        return [folder / WEIGHTS]
    raise LatheError(f"llmcompressor.save_compressed: {folder} holds no safetensors weights to compress")


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in weight_files(folder):
        state.update(load_file(str(path)))
    return state


def is_two_four(weight: torch.Tensor) -> bool:
    """Every group of 4 consecutive inputs holds at most 2 non-zeros."""
    if weight.shape[-1] % 4:
        return False
    return bool(((weight.reshape(-1, 4) != 0).sum(dim=1) <= 2).all())


def compress_folder(folder: str | Path, modules: list[str]) -> CompressedSave:
    """Rewrite the safetensors weights of ``folder`` with ``modules`` (plain module names)
    compressed, and record the format in its ``config.json``."""
    from safetensors.torch import save_file

    model_compressor, bitmask_config, two_four_config = _compressors()
    folder = Path(folder)
    old_files = weight_files(folder)
    state = read_state_dict(folder)
    names = sorted(m for m in modules if f"{m}.weight" in state)
    if not names:
        raise LatheError(f"llmcompressor.save_compressed: no targeted weight found in {folder}")
    weights = [state[f"{m}.weight"] for m in names]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    two_four = all(is_two_four(w) for w in weights)
    config_cls = two_four_config if two_four else bitmask_config
    sparsity = config_cls(targets=names, global_sparsity=zeros / max(total, 1))
    compressor = model_compressor(sparsity_config=sparsity)
    compressed = compressor.sparsity_compressor.compress(dict(state), compression_targets=set(names))
    compressed = {k: v.contiguous() for k, v in compressed.items()}

    dense_bytes = sum(p.stat().st_size for p in old_files)
    target_dense = sum(w.numel() * w.element_size() for w in weights)
    target_compressed = sum(
        v.numel() * v.element_size() for k, v in compressed.items() if k.rsplit(".", 1)[0] in names
    )
    tmp = folder / f"{WEIGHTS}.tmp"
    save_file(compressed, str(tmp), metadata={"format": "pt"})
    for path in old_files:
        path.unlink()
    (folder / INDEX).unlink(missing_ok=True)
    os.replace(tmp, folder / WEIGHTS)
    compressor.update_config(str(folder))
    return CompressedSave(
        format=sparsity.format,
        modules=len(names),
        dense_bytes=dense_bytes,
        compressed_bytes=(folder / WEIGHTS).stat().st_size,
        target_dense_bytes=target_dense,
        target_compressed_bytes=target_compressed,
    )


def decompressed_state_dict(folder: str | Path) -> dict[str, torch.Tensor]:
    """The dense weights of a folder written by :func:`compress_folder` (or by LLM Compressor
    with a sparse format), decompressed by compressed-tensors."""
    model_compressor, _, _ = _compressors()
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    compressor = model_compressor.from_compression_config(config.get("quantization_config"))
    state = read_state_dict(folder)
    if compressor is None or compressor.sparsity_compressor is None:
        return state
    return dict(compressor.sparsity_compressor.decompress_from_state_dict(state))


def load_compressed(folder: str | Path, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A dense causal LM from a sparse compressed folder (transformers 5 no longer decompresses
    the sparse formats itself)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(folder))
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = model.load_state_dict(decompressed_state_dict(folder), strict=False)
    tied = {k for k in missing if getattr(model.config, "tie_word_embeddings", False) and k.endswith("lm_head.weight")}
    if set(missing) - tied or unexpected:
        raise LatheError(f"{folder}: weights do not fit the model (missing {sorted(missing)[:3]}, unexpected {unexpected[:3]})")
    if tied:
        model.tie_weights()
    model.eval()
    return model
