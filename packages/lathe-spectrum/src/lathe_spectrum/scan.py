"""Scanning a model's weight matrices for their SNR, and the JSON cache of the results.

A result names each scanned weight by its module name (the parameter name without a
trailing ``.weight``, as Spectrum's ``snr_results_*.json`` files do) and records its SNR
and its *type*: the name with everything up to the layer index removed
(``model.layers.3.self_attn.q_proj`` → ``self_attn.q_proj``), so that layers of one type
compete with each other.

The cache is ``<spectrum_snr_dir>/snr_results_<model slug>.json``. Files lathe writes
carry a fingerprint of the weights and are recomputed when it no longer matches; files in
Spectrum's own format (``{name: {"snr": x, "type": t}}``, e.g. precomputed by the Spectrum
project) are used as they are, after checking every name exists in the model.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from lathe.errors import LatheError
from lathe_spectrum import snr

FORMAT_VERSION = 1
_LAYER_INDEX = re.compile(r"^.*?\.\d+\.")


@dataclass(frozen=True)
class LayerSNR:
    name: str
    type: str
    snr: float


@dataclass(frozen=True)
class ScanResult:
    layers: list[LayerSNR]
    path: Path
    computed: bool  # False when the cache was reused


def _note(message: str) -> None:
    print(f"lathe: spectrum: {message}", file=sys.stderr)


def module_name(param_name: str) -> str:
    return param_name.removesuffix(".weight")


def layer_type(name: str) -> str:
    """``model.layers.3.mlp.down_proj`` → ``mlp.down_proj``; names without an index stay whole."""
    return _LAYER_INDEX.sub("", name, count=1)


def model_slug(model_name: str) -> str:
    """Axolotl's file-name slug: ``Qwen/Qwen2-7B`` → ``Qwen_Qwen2_7B``."""
    return model_name.replace("/", "_").replace("-", "_")


def always_trained(model: torch.nn.Module) -> set[str]:
    """Parameter names of the input embeddings and the LM head (Spectrum keeps them trainable)."""
    ids = set()
    for get in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, get, lambda: None)()
        if module is not None and getattr(module, "weight", None) is not None:
            ids.add(id(module.weight))
    return {name for name, p in model.named_parameters() if id(p) in ids}


def scannable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Module name → weight for every 2-D (or stacked 3-D expert) weight except embeddings/head."""
    skip = always_trained(model)
    out = {}
    for name, param in model.named_parameters():
        if name in skip or param.ndim not in (2, 3):
            continue
        out[module_name(name)] = param
    return out


def fingerprint(weights: dict[str, torch.Tensor]) -> str:
    """Names, shapes, dtypes and a few values of each weight: cheap, and changes when weights do."""
    h = hashlib.sha256()
    for name, w in sorted(weights.items()):
        flat = w.detach().reshape(-1)
        probe = torch.cat([flat[:8], flat[-8:]]).float().cpu()
        h.update(f"{name}|{tuple(w.shape)}|{w.dtype}|".encode())
        h.update(probe.numpy().tobytes())
    return h.hexdigest()[:32]


def cache_path(snr_dir: str | Path, model_name: str) -> Path:
    return Path(snr_dir) / f"snr_results_{model_slug(model_name)}.json"


def compute(weights: dict[str, torch.Tensor]) -> list[LayerSNR]:
    layers = []
    for name, weight in weights.items():
        layers.append(LayerSNR(name, layer_type(name), snr.weight_snr(weight)))
    return layers


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LatheError(f"spectrum_snr_dir: cannot read SNR results {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LatheError(f"spectrum_snr_dir: {path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise LatheError(f"spectrum_snr_dir: {path} must hold a JSON object of layers, not {type(data).__name__}")
    return data


def _parse_layers(raw: object, path: Path) -> list[LayerSNR]:
    if not isinstance(raw, dict) or not raw:
        raise LatheError(f"spectrum_snr_dir: {path} holds no layers")
    layers = []
    for name, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("snr"), (int, float)):
            raise LatheError(f'spectrum_snr_dir: {path}: layer "{name}" needs a numeric "snr"')
        layers.append(LayerSNR(name, str(entry.get("type") or layer_type(name)), float(entry["snr"])))
    return layers


def _check_names(layers: list[LayerSNR], weights: dict[str, torch.Tensor], path: Path) -> None:
    missing = [layer.name for layer in layers if layer.name not in weights]
    if missing:
        raise LatheError(
            f'spectrum_snr_dir: {path} names layers this model does not have, e.g. "{missing[0]}" '
            f"({len(missing)} of {len(layers)}); it was computed for another model: delete it or "
            "set spectrum_model_name"
        )


def load_or_scan(model: torch.nn.Module, model_name: str, snr_dir: str | Path) -> ScanResult:
    """Return the SNR of every scannable weight, from the cache when it is valid, else by SVD."""
    snr_dir = Path(snr_dir)
    if snr_dir.exists() and not snr_dir.is_dir():
        raise LatheError(f"spectrum_snr_dir: {snr_dir} is a file; it must be a directory of SNR results")
    path = cache_path(snr_dir, model_name)
    weights = scannable(model)
    if not weights:
        raise LatheError(f"spectrum: {type(model).__name__} has no weight matrices to scan")
    fp = fingerprint(weights)
    if path.exists():
        data = _read(path)
        if "fingerprint" not in data:  # Spectrum's own format: precomputed, trusted
            trained_anyway = {module_name(n) for n in always_trained(model)}
            layers = [x for x in _parse_layers(data, path) if x.name not in trained_anyway]
            _check_names(layers, weights, path)
            _note(f"using precomputed SNR results {path}")
            return ScanResult(layers, path, computed=False)
        if data.get("fingerprint") == fp:
            layers = _parse_layers(data.get("layers"), path)
            _check_names(layers, weights, path)
            _note(f"reusing SNR results {path}")
            return ScanResult(layers, path, computed=False)
        _note(f"{path} was computed for other weights; scanning again")
    layers = compute(weights)
    snr_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_VERSION,
        "model": model_name,
        "fingerprint": fp,
        "estimator": "median singular value / sqrt(n * MP median); edge sigma*(sqrt(n)+sqrt(m))",
        "layers": {layer.name: {"snr": layer.snr, "type": layer.type} for layer in layers},
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    tmp.replace(path)
    _note(f"scanned {len(layers)} weights of {model_name} into {path}")
    return ScanResult(layers, path, computed=True)

