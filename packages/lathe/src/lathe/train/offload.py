"""Activation offloading (``activation_offloading: true | legacy | disk``) and ``gc_collect_steps``.

Saved-for-backward tensors leave the accelerator during the forward pass and come back when
backward needs them, through ``torch.autograd.graph.saved_tensors_hooks``:

- ``true``: copied to pinned CPU memory on a side CUDA stream (the copy overlaps compute) and
  copied back on first use; tensors already on the CPU stay where they are.
- ``legacy``: ``torch.autograd.graph.save_on_cpu`` (synchronous copies).
- ``disk``: written to files in a temporary folder made for each training step and removed
  when the step ends, also when it fails.

Parameters are never offloaded (they stay resident anyway), nor tensors smaller than
``min_bytes``. Values come back bit for bit, so the loss and gradients equal a run without
offloading.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import TrainerCallback

if TYPE_CHECKING:
    from lathe.config import Config

MIN_BYTES = 1 << 20  # smaller tensors are not worth a copy (or a file)


def offload_mode(cfg: Config) -> str | None:
    """``stream``, ``legacy``, ``disk`` or None, from ``activation_offloading`` and
    Axolotl's ``gradient_checkpointing: offload | offload_disk`` spellings."""
    mode = cfg.activation_offloading
    if cfg.gradient_checkpointing == "offload_disk":
        return "disk"
    if cfg.gradient_checkpointing == "offload" and not mode:
        mode = True
    if mode is True:
        return "stream"
    return mode or None


def _keep(t: torch.Tensor, min_bytes: int) -> bool:
    return isinstance(t, torch.nn.Parameter) or t.numel() * t.element_size() < min_bytes


class StreamOffload(torch.autograd.graph.saved_tensors_hooks):
    """CUDA tensors to pinned CPU memory on a side stream; back on the compute stream on unpack."""

    def __init__(self, min_bytes: int) -> None:
        self.stream = torch.cuda.Stream() if torch.cuda.is_available() else None
        super().__init__(lambda t: self.pack(t, min_bytes), self.unpack)

    def pack(self, t: torch.Tensor, min_bytes: int) -> Any:
        if self.stream is None or t.device.type != "cuda" or _keep(t, min_bytes):
            return t
        self.stream.wait_stream(torch.cuda.current_stream(t.device))
        with torch.cuda.stream(self.stream):
            host = torch.empty(t.shape, dtype=t.dtype, layout=t.layout, pin_memory=True)
            host.copy_(t, non_blocking=True)
            t.record_stream(self.stream)  # the allocator keeps t until the copy is done
            done = self.stream.record_event()
        return (host, t.device, done)

    @staticmethod
    def unpack(packed: Any) -> torch.Tensor:
        if isinstance(packed, torch.Tensor):
            return packed
        host, device, done = packed
        torch.cuda.current_stream(device).wait_event(done)
        return host.to(device, non_blocking=True)


class DiskOffload(torch.autograd.graph.saved_tensors_hooks):
    """Saved tensors to files under ``folder`` (one per tensor), read back on unpack."""

    def __init__(self, folder: Path, min_bytes: int) -> None:
        self.folder = folder
        self.names = itertools.count()
        super().__init__(lambda t: self.pack(t, min_bytes), self.unpack)

    def pack(self, t: torch.Tensor, min_bytes: int) -> Any:
        if _keep(t, min_bytes):
            return t
        path = self.folder / f"{next(self.names)}.pt"
        torch.save(t.detach().cpu(), path)
        return (path, t.device)

    @staticmethod
    def unpack(packed: Any) -> torch.Tensor:
        if isinstance(packed, torch.Tensor):
            return packed
        path, device = packed
        return torch.load(path, weights_only=True).to(device)  # type: ignore[no-any-return]


@contextlib.contextmanager
def offloading(mode: str | None, min_bytes: int | None = None) -> Iterator[None]:
    """The saved-tensor hooks of ``mode`` around one training step (forward and backward)."""
    min_bytes = MIN_BYTES if min_bytes is None else min_bytes
    if mode is None:
        yield
        return
    if mode == "legacy":
        with torch.autograd.graph.save_on_cpu(pin_memory=torch.cuda.is_available()):
            yield
        return
    if mode == "stream":
        with StreamOffload(min_bytes):
            yield
        return
    folder = Path(tempfile.mkdtemp(prefix="lathe-offload-"))
    try:
        with DiskOffload(folder, min_bytes):
            yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def gc_intervals(cfg: Config) -> tuple[int | None, int | None]:
    """(``torch_empty_cache_steps``, ``gc_collect_steps``); Axolotl's deprecated ``gc_steps`` sets
    both (the first only when positive)."""
    if cfg.gc_steps is not None:
        return (cfg.gc_steps if cfg.gc_steps > 0 else None), cfg.gc_steps
    return cfg.torch_empty_cache_steps, cfg.gc_collect_steps


class GarbageCollection(TrainerCallback):  # type: ignore[misc]
    """``gc_collect_steps``: ``gc.collect()`` (and the CUDA cache emptied) every N steps, and always
    at the end of an epoch and before an evaluation; ``-1``: only those two."""

    def __init__(self, every: int) -> None:
        self.every = every

    @staticmethod
    def collect() -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if control.should_evaluate or (self.every > 0 and state.global_step % self.every == 0):
            self.collect()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.collect()
