"""``chunked_cross_entropy``: the core's tiled loss, on the hidden-states loss mechanism.

The loss is computed from the final hidden states (:mod:`lathe.hidden_loss`) chunk by chunk of
tokens; each chunk's logits are made inside a non-reentrant checkpoint, so forward keeps only
the chunk's hidden states and backward rebuilds one chunk's logits at a time: the
``tokens × vocabulary`` logits never exist at once. It answers the same exclusive slot as the
plugins' fused losses (Liger, Cut Cross Entropy, KD): :func:`hidden_states_loss` refuses two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError
from lathe.hidden_loss import (
    IGNORE_INDEX,
    HiddenStatesLoss,
    OutputHead,
    next_token_targets,
    token_count,
)

if TYPE_CHECKING:
    import torch

    from lathe.config import Config
    from lathe.plugins import Plugins

DEFAULT_CHUNKS = 8  # Axolotl's default number of chunks


def _chunk_loss(hidden: torch.Tensor, targets: torch.Tensor, head: OutputHead) -> torch.Tensor:
    import torch.nn.functional as F

    return F.cross_entropy(head(hidden).float(), targets, ignore_index=IGNORE_INDEX, reduction="sum")


def chunked_cross_entropy(
    hidden: torch.Tensor, head: OutputHead, labels: torch.Tensor, num_items: Any, chunks: int
) -> torch.Tensor:
    """Sum of the next-token cross-entropies over ``chunks`` token chunks, divided by the token count."""
    import torch
    from torch.utils.checkpoint import checkpoint

    flat = hidden.reshape(-1, hidden.shape[-1])
    targets = next_token_targets(labels).reshape(-1)
    total = hidden.new_zeros((), dtype=torch.float32)
    for h, t in zip(torch.tensor_split(flat, chunks), torch.tensor_split(targets, chunks), strict=True):
        if len(t) and bool((t != IGNORE_INDEX).any()):
            total = total + checkpoint(_chunk_loss, h, t, head, use_reentrant=False)
    return total / token_count(labels, num_items)


class ChunkedCrossEntropy(HiddenStatesLoss):
    config_key = "chunked_cross_entropy"

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks

    def __call__(
        self, hidden: torch.Tensor, head: OutputHead, labels: torch.Tensor, num_items: Any, batch: dict[str, Any]
    ) -> torch.Tensor:
        return chunked_cross_entropy(hidden, head, labels, num_items, self.chunks)


def hidden_states_loss(cfg: Config, plugins: Plugins) -> HiddenStatesLoss | None:
    """The run's loss from hidden states: a plugin's answer or the core's chunked cross-entropy.

    The slot is exclusive: a plugin's answer together with ``chunked_cross_entropy`` is an error
    naming both keys.
    """
    answer = plugins.call("lathe_hidden_states_loss", cfg=cfg)
    if not getattr(cfg, "chunked_cross_entropy", None):
        return answer  # type: ignore[no-any-return]
    if answer is not None:
        other = answer.config_key or "a plugin's hidden-states loss"
        raise LatheError(f"chunked_cross_entropy and {other} both compute the loss from the hidden states; enable only one")
    return ChunkedCrossEntropy(cfg.chunked_cross_entropy_num_chunks or DEFAULT_CHUNKS)
