"""Training losses computed from the final hidden states, without materialising the logits.

A plugin answers ``lathe_hidden_states_loss`` with a :class:`HiddenStatesLoss`; the trainer
then runs the model for its final hidden states (``output_hidden_states=True,
logits_to_keep=1``: no batch × length × vocab logits are built) and calls the loss with
them and the model's :class:`OutputHead`. Liger's fused linear cross-entropy, Cut Cross
Entropy and lathe-kd's chunked distillation loss are such losses; the hook is exclusive, so
two of them enabled together is an error naming both.

Normalisation is the core's (see :mod:`lathe.train.trainer`): a loss returns the sum of its
token losses divided by ``num_items`` (the trained tokens of the whole accumulated batch,
counted by the Trainer) when given, else by its own trained-token count.

Public API for plugins: :class:`HiddenStatesLoss`, :class:`OutputHead`, :func:`output_head`,
:func:`next_token_targets`, :func:`token_count`, :func:`dense_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from lathe.errors import LatheError

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class OutputHead:
    """How a causal LM turns final hidden states into logits.

    ``logits = softcap · tanh(scale · (h @ weightᵀ + bias) / softcap)`` (no tanh when
    ``softcap`` is None). ``weight`` is the output embedding, which is the input embedding
    when the model ties them; gradients flow into it either way.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None = None
    scale: float = 1.0
    softcap: float | None = None

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        logits = F.linear(hidden, self.weight, self.bias)
        if self.scale != 1.0:
            logits = logits * self.scale
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def _text_config(model: Any) -> Any:
    config = model.config
    getter = getattr(config, "get_text_config", None)
    return getter() if getter is not None else config


def logit_transform(model: Any) -> tuple[float, float | None]:
    """(scale, softcap) the model applies after its output layer, read from its config.

    Cohere multiplies by ``logit_scale``, Granite divides by ``logits_scaling``, Falcon-H1
    multiplies by ``lm_head_multiplier``; Gemma 2/3/3n/4 soft-cap at ``final_logit_softcapping``.
    """
    scale = 1.0
    for config in {id(c): c for c in (model.config, _text_config(model))}.values():
        if getattr(config, "logit_scale", None) is not None:
            scale *= float(config.logit_scale)
        if getattr(config, "logits_scaling", None):
            scale /= float(config.logits_scaling)
        if getattr(config, "lm_head_multiplier", None) is not None:
            scale *= float(config.lm_head_multiplier)
        cap = getattr(config, "final_logit_softcapping", None)
        if cap:
            return scale, float(cap)
    return scale, None


def _plain_linear(module: Any) -> Any:
    """The ``nn.Linear`` computing the output layer, seen through peft's modules_to_save wrapper."""
    import torch

    inner = getattr(module, "modules_to_save", None)
    if inner is not None and not getattr(module, "disable_adapters", False):
        active = getattr(module, "active_adapter", None)
        active = active[0] if isinstance(active, list | tuple) else active
        module = inner[active] if active in inner else getattr(module, "original_module", module)
    if type(module) is torch.nn.Linear:
        return module
    return None


def output_head(model: Any) -> OutputHead:
    """The output layer of ``model`` (unwrapped from peft), with its scale and soft-cap."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    module = base.get_output_embeddings()
    linear = _plain_linear(module) if module is not None else None
    if linear is None:
        raise LatheError(
            f"{type(base).__name__}: the output layer is {type(module).__name__}, not a plain linear layer "
            "(an adapter on lm_head?); a loss computed from hidden states needs its weight. "
            "Remove lm_head from lora_target_modules or disable the fused loss"
        )
    scale, softcap = logit_transform(base)
    return OutputHead(weight=linear.weight, bias=linear.bias, scale=scale, softcap=softcap)


def next_token_targets(labels: torch.Tensor) -> torch.Tensor:
    """Targets aligned with the hidden states: position t is trained on ``labels[t + 1]``."""
    import torch.nn.functional as F

    return F.pad(labels[..., 1:], (0, 1), value=IGNORE_INDEX)


def token_count(labels: torch.Tensor, num_items: Any = None) -> torch.Tensor:
    """The divisor of a summed loss: ``num_items`` when the trainer counted it, else the
    trained next-token targets of ``labels`` (never less than 1)."""
    import torch

    n = (labels[..., 1:] != IGNORE_INDEX).sum() if num_items is None else torch.as_tensor(num_items)
    return n.to(labels.device).clamp(min=1).float()


def dense_loss(hidden: torch.Tensor, head: OutputHead, labels: torch.Tensor, num_items: Any = None) -> torch.Tensor:
    """The standard loss from materialised logits: the reference every hidden-states loss matches."""
    import torch.nn.functional as F

    logits = head(hidden).float()
    targets = next_token_targets(labels)
    total = F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
    return total / token_count(labels, num_items)


class HiddenStatesLoss:
    """What ``lathe_hidden_states_loss`` returns. Subclass it and implement :meth:`__call__`.

    ``config_key`` names the key that enabled the loss (it appears in conflict messages);
    ``batch_keys`` are batch entries the loss reads (from ``batch``) that are not model
    inputs, so the trainer does not pass them to the model.
    """

    config_key: ClassVar[str] = ""
    batch_keys: ClassVar[tuple[str, ...]] = ()

    def __call__(
        self, hidden: torch.Tensor, head: OutputHead, labels: torch.Tensor, num_items: Any, batch: dict[str, Any]
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, float]]:
        """The loss (and optional metrics to log) for one micro-batch.

        ``hidden`` is batch × length × hidden (the final, normed hidden states), ``labels``
        the batch's labels, unshifted (:func:`next_token_targets` aligns them), ``num_items``
        the trained tokens of the accumulated batch or None (evaluation).
        """
        raise NotImplementedError

    def check_model(self, model: Any) -> None:
        """Called once when the trainer is built; raise ``LatheError`` for a model this loss cannot serve."""


def final_hidden_states(model: Any, inputs: dict[str, Any]) -> torch.Tensor:
    """Run ``model`` for its final (normed) hidden states; only the last position's logits are built."""
    out = model(**{**inputs, "output_hidden_states": True, "logits_to_keep": 1, "use_cache": False})
    return out.hidden_states[-1]  # type: ignore[no-any-return]


def verify_output_head(model: Any, key: str) -> None:
    """Check on a few tokens that :func:`output_head` reproduces the model's own logits.

    A family that transforms its logits in a way :class:`OutputHead` does not describe is
    an error naming ``key``, never a silently different loss.
    """
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = output_head(model)
    vocab = head.weight.shape[0]
    ids = (torch.arange(6, device=head.weight.device) * 7919 % max(vocab - 1, 1)).unsqueeze(0)
    was_training = base.training
    base.eval()
    try:
        with torch.no_grad():
            out = base(input_ids=ids, output_hidden_states=True, use_cache=False)
            ours = head(out.hidden_states[-1]).float()
    finally:
        base.train(was_training)
    theirs = out.logits.float()
    tolerance = 1e-3 * max(1.0, float(theirs.abs().max()))
    if ours.shape != theirs.shape or not torch.allclose(ours, theirs, atol=tolerance, rtol=1e-2):
        model_type = getattr(base.config, "model_type", type(base).__name__)
        raise LatheError(
            f"{key}: model type {model_type!r} computes its logits in a way lathe cannot reproduce from "
            "the output layer (not a linear head with scale/soft-cap); disable it for this model"
        )
