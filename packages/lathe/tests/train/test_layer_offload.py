"""layer_offloading: the schedule (which layer is resident when), that saved weights are references
(device copies are freed after each layer), that loss and gradients equal no offloading, and the
clear errors. The schedule runs on this machine through a fake mover that copies on the CPU."""

from __future__ import annotations

import copy
import gc
from typing import Any

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch.multiprocessing.reductions import StorageWeakRef
from transformers import AutoModelForCausalLM

from lathe.config import ConfigError
from lathe.errors import LatheError
from lathe.testing.models import tiny_model_config
from lathe.train.layer_offload import LayerOffloader, check_layer_offloading, decoder_layers


class FakeMover:
    """Copies "to the device" by cloning on the CPU, and remembers every copy it made."""

    def __init__(self) -> None:
        self.copies: list[StorageWeakRef] = []  # the copies' memory, alive while anything views it

    def copy_in(self, host: torch.Tensor) -> tuple[torch.Tensor, Any]:
        tensor = host.clone()
        self.copies.append(StorageWeakRef(tensor.untyped_storage()))
        return tensor, None

    def ready(self, tensor: torch.Tensor, marker: Any) -> None:
        pass

    def host(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().clone()

    def alive(self) -> int:
        gc.collect()
        return sum(not ref.expired() for ref in self.copies)


def _lora_model(layers: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    config = tiny_model_config("llama", num_hidden_layers=layers)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"])
    return get_peft_model(model, lora)


def _step(model: torch.nn.Module, offloader: LayerOffloader | None, mover: FakeMover | None = None) -> tuple[torch.Tensor, int]:
    ids = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(1))
    if offloader is None:
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        return out.loss.detach(), 0
    with offloader:
        out = model(input_ids=ids, labels=ids)
        alive_after_forward = mover.alive() if mover else 0
        out.loss.backward()
    return out.loss.detach(), alive_after_forward


def _max_resident(log: list[tuple[str, int]]) -> int:
    resident, most = set(), 0
    for what, layer in log:
        if what == "load":
            resident.add(layer)
        elif what == "release":
            resident.discard(layer)
        most = max(most, len(resident))
    return most


def test_loss_and_gradients_equal_no_offloading_and_copies_are_freed() -> None:
    reference = _lora_model()
    model = copy.deepcopy(reference)
    mover = FakeMover()
    offloader = LayerOffloader(decoder_layers(model), mover)
    expected, _ = _step(reference, None)
    loss, alive_after_forward = _step(model, offloader, mover)

    assert torch.equal(loss, expected)
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert grads and all(g is not None for g in grads.values())
    for name, p in reference.named_parameters():
        if p.requires_grad:
            assert torch.equal(grads[name], p.grad), name
    # after the forward every layer was released, and the weights autograd saved are references:
    # no device copy survives (without the saved-tensor hook, every layer's copies would)
    assert alive_after_forward == 0
    # prefetch keeps at most the running layer and the next one on the device
    assert _max_resident(offloader.log) <= 2
    forward = [entry for entry in offloader.log[: offloader.log.index(("release", 2)) + 1]]
    assert forward == [("load", 0), ("use", 0), ("load", 1), ("release", 0), ("use", 1), ("load", 2),
                       ("release", 1), ("use", 2), ("release", 2)]
    # in backward, layers come back last to first
    backward_uses = [layer for what, layer in offloader.log[len(forward):] if what == "use"]
    assert backward_uses == [2, 1, 0]


def test_frozen_weights_live_on_their_host_copies_between_visits_and_come_back_on_close() -> None:
    model = _lora_model(layers=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    layers = decoder_layers(model)
    offloader = LayerOffloader(layers, FakeMover())
    frozen = offloader.frozen[0][0]
    assert frozen.data.data_ptr() == offloader.hosts[0][0].data_ptr()
    trainable = next(p for p in layers[0].parameters() if p.requires_grad)
    assert all(trainable is not p for p in offloader.frozen[0])  # LoRA weights never move
    _step(model, offloader)
    assert frozen.data.data_ptr() == offloader.hosts[0][0].data_ptr()
    offloader.close()
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), before[name]), name
    steps = len(offloader.log)
    _step(model, None)  # hooks removed: a plain step moves nothing
    assert len(offloader.log) == steps


def test_a_model_without_frozen_layer_weights_is_refused() -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_model_config("llama", num_hidden_layers=2))
    with pytest.raises(LatheError, match="layer_offloading: the decoder layers have no frozen parameters"):
        LayerOffloader(decoder_layers(model), FakeMover())


def test_layer_offloading_needs_a_gpu_and_a_16_bit_base(cfg_of: Any) -> None:
    cfg = cfg_of(layer_offloading=True, adapter="lora")
    if torch.cuda.is_available():
        check_layer_offloading(cfg)
    else:
        with pytest.raises(LatheError, match="layer_offloading: true needs a CUDA GPU"):
            check_layer_offloading(cfg)
    check_layer_offloading(cfg_of(adapter="lora"))  # off: nothing to check


def test_layer_offloading_with_activation_offloading_is_refused(cfg_of: Any) -> None:
    with pytest.raises(ConfigError, match="layer_offloading with activation_offloading is not available"):
        cfg_of(layer_offloading=True, activation_offloading=True)
