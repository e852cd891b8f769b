"""``layer_offloading``: frozen decoder-layer parameters live on the CPU and visit the GPU one layer
at a time, so a LoRA run on a model larger than GPU memory holds only ~two layers' frozen weights.

Schedule (layer ``i`` of ``n``):

- forward: before layer ``i`` runs, its copy must have arrived (the compute stream waits for it)
  and the copy of layer ``i + 1`` starts on a side stream; after layer ``i`` ran, its parameters
  point back at their CPU copies and the GPU copy is freed.
- backward: the same in reverse, started by the layer's backward pre-hook (prefetch ``i - 1``).

Autograd keeps the weights a layer used in forward for its backward. Those would hold every GPU
copy alive until backward, so a ``saved_tensors_hooks`` replaces a saved weight by a reference
(layer, parameter, view) and, on unpack, returns the same view of the copy that is resident then
(loading it if the prefetch did not). Trainable parameters (LoRA) never move. Values are the same
bits, so the loss and gradients equal a run without offloading.

The copies go through a :class:`Mover`; :class:`CudaMover` is the real one. Tests drive the
schedule on a CPU with a fake mover.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from lathe.errors import LatheError


class Mover(Protocol):
    def copy_in(self, host: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Start copying ``host`` to the device; returns the device tensor and a completion marker."""

    def ready(self, tensor: torch.Tensor, marker: Any) -> None:
        """Make the compute stream wait for the copy of ``tensor`` before using it."""

    def host(self, tensor: torch.Tensor) -> torch.Tensor:
        """The CPU copy a parameter lives in between its visits."""


class CudaMover:
    """Copies on a side CUDA stream from pinned memory, so they overlap the previous layer's compute."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.stream = device, torch.cuda.Stream(device)

    def copy_in(self, host: torch.Tensor) -> tuple[torch.Tensor, Any]:
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream):
            tensor = host.to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.stream)
        return tensor, event

    def ready(self, tensor: torch.Tensor, marker: Any) -> None:
        current = torch.cuda.current_stream(self.device)
        current.wait_event(marker)
        tensor.record_stream(current)  # freed only after the compute that reads it

    def host(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().to("cpu").pin_memory()


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of decoder layers (the first ModuleList of ``*DecoderLayer`` / ``*Block``)."""
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > 1 and all(
            type(layer).__name__.endswith(("DecoderLayer", "Block")) for layer in module
        ):
            return module
    raise LatheError("layer_offloading: found no stack of decoder layers in this model")


class LayerOffloader(torch.autograd.graph.saved_tensors_hooks):
    """Streams frozen parameters of ``layers`` through the device one layer at a time (see module doc).

    Use as a context around each training step (leaving it puts every layer back on its CPU copies);
    :meth:`close` puts every parameter back on the device and removes the hooks.
    """

    def __init__(self, layers: nn.ModuleList, mover: Mover) -> None:
        self.mover = mover
        self.frozen = [[p for p in layer.parameters() if not p.requires_grad] for layer in layers]
        if not any(self.frozen):
            raise LatheError("layer_offloading: the decoder layers have no frozen parameters to offload "
                             "(it serves LoRA, or layers frozen with unfrozen_parameters)")
        self.device = next(p.device for params in self.frozen for p in params)
        self.hosts = [[mover.host(p.data) for p in params] for params in self.frozen]
        self.copies: dict[int, tuple[list[torch.Tensor], list[Any]]] = {}
        self.active: set[int] = set()
        self.owner: dict[int, tuple[int, int]] = {}  # storage address of an active copy → (layer, param)
        self.log: list[tuple[str, int]] = []  # ("load" | "use" | "release", layer): the schedule, for tests
        for i, params in enumerate(self.frozen):
            for p, host in zip(params, self.hosts[i], strict=True):
                p.data = host
        self.handles = []
        for i, layer in enumerate(layers):
            self.handles += [
                layer.register_forward_pre_hook(self._before(i, i + 1)),
                layer.register_forward_hook(lambda *_, i=i: self.release(i)),
                layer.register_full_backward_pre_hook(self._backward(i)),
            ]
        super().__init__(self.pack, self.unpack)

    def _before(self, i: int, following: int) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            self.use(i)
            self.load(following)
        return hook

    def _backward(self, i: int) -> Callable[..., None]:
        """Layer ``i + 1``'s backward is done when layer ``i``'s starts: free it, use ``i``, prefetch ``i - 1``."""
        def hook(*_: Any) -> None:
            self.release(i + 1)
            self.use(i)
            self.load(i - 1)
        return hook

    def load(self, i: int) -> None:
        """Start the copy of layer ``i`` (nothing when it is out of range, resident or has no frozen params)."""
        if 0 <= i < len(self.frozen) and i not in self.copies and self.frozen[i]:
            copies = [self.mover.copy_in(host) for host in self.hosts[i]]
            self.copies[i] = ([c for c, _ in copies], [m for _, m in copies])
            self.log.append(("load", i))

    def use(self, i: int) -> None:
        """Point layer ``i``'s frozen parameters at their device copies (waiting for the copy)."""
        if i in self.active or not self.frozen[i]:
            return
        self.load(i)
        tensors, markers = self.copies[i]
        for k, (p, tensor, marker) in enumerate(zip(self.frozen[i], tensors, markers, strict=True)):
            self.mover.ready(tensor, marker)
            p.data = tensor
            self.owner[tensor.untyped_storage().data_ptr()] = (i, k)
        self.active.add(i)
        self.log.append(("use", i))

    def release(self, i: int) -> None:
        """Layer ``i`` back on its CPU copies; the device copies are freed (saved ones are references)."""
        if i not in self.active:
            return
        for p, host, tensor in zip(self.frozen[i], self.hosts[i], self.copies[i][0], strict=True):
            self.owner.pop(tensor.untyped_storage().data_ptr(), None)
            p.data = host
        del self.copies[i]
        self.active.discard(i)
        self.log.append(("release", i))

    def pack(self, tensor: torch.Tensor) -> Any:
        where = self.owner.get(tensor.untyped_storage().data_ptr()) if tensor.device.type != "meta" else None
        if where is None:
            return tensor
        return (*where, tensor.size(), tensor.stride(), tensor.storage_offset())

    def unpack(self, packed: Any) -> torch.Tensor:
        if isinstance(packed, torch.Tensor):
            return packed
        i, k, size, stride, offset = packed
        self.use(i)
        return self.frozen[i][k].data.as_strided(size, stride, offset)

    def __exit__(self, *exc: object) -> None:
        """The step is over: every layer back on its CPU copies (nothing stays on the device between steps)."""
        super().__exit__(*exc)
        for i in list(self.active):
            self.release(i)
        self.copies.clear()  # prefetched copies no layer used

    def close(self) -> None:
        """Every frozen parameter back on the device, hooks removed (after training)."""
        for handle in self.handles:
            handle.remove()
        for params, hosts in zip(self.frozen, self.hosts, strict=True):
            for p, host in zip(params, hosts, strict=True):
                p.data = host.to(self.device)


def check_layer_offloading(cfg: Any) -> None:
    """A clear error where layer offloading cannot run: no CUDA GPU, or quantized frozen weights."""
    if not cfg.layer_offloading:
        return
    if not torch.cuda.is_available():
        raise LatheError("layer_offloading: true needs a CUDA GPU (it streams frozen layers from CPU memory "
                         "to the GPU); on this machine every parameter already lives in CPU memory")
    if cfg.load_in_4bit or cfg.load_in_8bit:
        raise LatheError("layer_offloading with load_in_4bit / load_in_8bit is not available: the quantized "
                         "weights carry device state that cannot be streamed; use LoRA on a 16-bit base")
