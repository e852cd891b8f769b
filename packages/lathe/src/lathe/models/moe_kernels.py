"""Which forward the fused MoE experts run: ``experts_implementation``, ``use_scattermoe``,
``use_sonicmoe`` (Axolotl's kernels integration keys) and ``use_kernels``.

transformers 5 dispatches every fused experts module through ``config._experts_implementation``:
``eager`` (a loop over experts), ``batched_mm``, ``grouped_mm`` (tokens sorted by expert, one
grouped matmul per projection: ``torch.nn.functional.grouped_mm`` on CUDA and on CPU), and hub
kernels (``sonicmoe``, ``deepgemm``). lathe passes the key through, and resolves the Axolotl
switches onto it:

- ``use_sonicmoe``: transformers' ``sonicmoe`` when the ``kernels`` package, a Hopper GPU and the
  ``kernels-community/sonic-moe`` build in the local Hugging Face cache are all present; otherwise
  ``grouped_mm`` serves it, said in one line.
- ``use_scattermoe``: ScatterMoE's hub kernels have no transformers integration, so ``grouped_mm``
  serves it, said in one line.

On CUDA ``grouped_mm`` must run the grouped-matmul kernel (compute capability 8.0 or newer):
transformers would otherwise fall back to a per-expert loop, which lathe refuses instead.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import torch

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.config import Config


def _note(message: str) -> None:
    print(f"lathe: {message}", file=sys.stderr)


def require_grouped_mm(key: str) -> str:
    """``grouped_mm``, after checking that CUDA (when present) runs it as one grouped matmul."""
    if torch.cuda.is_available():
        capability = torch.cuda.get_device_capability()
        if capability < (8, 0) or not hasattr(torch.nn.functional, "grouped_mm"):
            raise LatheError(
                f"{key}: the grouped expert matmul needs a GPU of compute capability 8.0 or newer and torch >= 2.10 "
                f"(this GPU: {capability[0]}.{capability[1]}, torch {torch.__version__}); set experts_implementation: "
                "eager to run the per-expert loop knowingly"
            )
    return "grouped_mm"


def sonicmoe_unavailable() -> str | None:
    """Why transformers' SonicMoE experts cannot run here (None: they can, from the local cache)."""
    try:
        from transformers.integrations.hub_kernels import _HUB_KERNEL_MAPPING
        from transformers.integrations.sonicmoe import is_sonicmoe_loadable

        is_sonicmoe_loadable(raise_error=True)
    except ImportError as exc:
        return str(exc)
    from huggingface_hub import snapshot_download

    source = _HUB_KERNEL_MAPPING["sonic-moe"]
    try:
        snapshot_download(source["repo_id"], revision=source.get("revision"), local_files_only=True)
    except Exception:  # huggingface_hub raises several kinds for "not in the cache"
        return f"{source['repo_id']} is not in the local Hugging Face cache (lathe does not download kernels)"
    return None


def experts_implementation(cfg: Config) -> str | None:
    """The ``experts_implementation`` to build the model with (None: transformers' default)."""
    if cfg.quantize_moe_experts and cfg.load_in_4bit:
        for key in ("use_scattermoe", "use_sonicmoe"):
            if getattr(cfg, key):
                _note(f"{key}: the experts are quantized (quantize_moe_experts), so lathe's per-expert 4-bit path "
                      "serves them")
        return None
    if cfg.use_sonicmoe:
        reason = sonicmoe_unavailable()
        if reason is None:
            return "sonicmoe"
        _note(f"use_sonicmoe: SonicMoE is not available here ({reason}); transformers' grouped_mm experts serve it")
        return require_grouped_mm("use_sonicmoe")
    if cfg.use_scattermoe:
        _note("use_scattermoe: ScatterMoE's kernels are not integrated in lathe; transformers' grouped_mm experts "
              "(one grouped matmul per projection) serve it")
        return require_grouped_mm("use_scattermoe")
    if cfg.experts_implementation == "grouped_mm":
        return require_grouped_mm("experts_implementation: grouped_mm")
    if cfg.experts_implementation in ("sonicmoe", "deepgemm") and not torch.cuda.is_available():
        raise LatheError(f"experts_implementation: {cfg.experts_implementation} runs a CUDA hub kernel; this machine "
                         "has no CUDA device (use grouped_mm or eager)")
    return cfg.experts_implementation


def check_model_has_experts(cfg: Config, model: Any) -> None:
    """An experts key on a model without fused experts would change nothing: refuse it."""
    keys = [k for k in ("experts_implementation", "use_scattermoe", "use_sonicmoe") if getattr(cfg, k)]
    if keys and not model._can_set_experts_implementation():
        raise LatheError(f"{', '.join(keys)}: {type(model).__name__} has no fused MoE experts to run")


def build_kwargs(cfg: Config) -> dict[str, Any]:
    """The ``experts_implementation`` argument of from_pretrained / from_config, when one is chosen."""
    implementation = experts_implementation(cfg)
    return {} if implementation is None else {"experts_implementation": implementation}


def apply_use_kernels(cfg: Config, model: Any) -> None:
    """``use_kernels``: transformers swaps in the hub kernels (``kernels`` package) its layers declare,
    keeping a layer's own forward where no kernel loads for the device."""
    if not cfg.use_kernels:
        return
    try:
        import kernels  # noqa: F401
    except ImportError as exc:
        raise LatheError("use_kernels: true needs the kernels package: pip install 'lathe[kernels]'") from exc
    model.set_use_kernels(True)
