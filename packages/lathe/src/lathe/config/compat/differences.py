"""Deliberate differences from Axolotl: keys lathe implements with a meaning that differs on purpose.

Add a row when lathe knowingly does something else than Axolotl for the same key or value; it is
shown in docs/axolotl-compatibility.md (regenerate it: ``python -m lathe.config.compat.docs``).
"""

from __future__ import annotations

from typing import NamedTuple


class Difference(NamedTuple):
    key: str
    axolotl: str
    lathe: str
    why: str


DIFFERENCES: list[Difference] = [
    Difference(
        "unknown keys", "ignored (a typo is silently a default)", "an error with a did-you-mean",
        "a misspelt key must never train a different model than the one asked for",
    ),
    Difference(
        "optimizer (default)", "adamw_torch_fused", "adamw_torch",
        "the same update; the fused kernel is chosen by torch where it applies",
    ),
    Difference(
        "trust_remote_code / pickle weights", "code and .bin weights load when present",
        "off unless trust_remote_code / allow_pickle_weights is set",
        "loading a model must not run code the user did not ask to run",
    ),
    Difference(
        "`key:` with no value (null)", "the field is None (for bf16: off)",
        "unset: lathe's default applies (bf16: auto, max_grad_norm: 1.0, lora_r: 8)",
        "one rule for every key; write bf16: false or max_grad_norm: 0 to turn those off",
    ),
    Difference(
        "`key: false` on an unavailable feature", "the feature stays off", "accepted: it asks for nothing",
        "switching a feature off is honoured by not having it; any other value of the key is refused",
    ),
]
