"""``unfrozen_parameters``: train only the parameters whose names match; freeze the rest.

Axolotl's pattern language: a regex matched at the start of the parameter name, in which a
``.`` is a literal dot (unless followed by ``+``), optionally ending in ``[start:end]`` to
train only those rows (first dimension) of the matched parameter. Rows outside the range
get a zero gradient (a hook), as in Axolotl; with weight decay they would still decay, so
lathe refuses row ranges together with ``weight_decay`` > 0.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

import torch

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.config import Config

_RANGE = re.compile(r"^(.+)\[(\d*)(?::(\d*))?\]$")


class NamePattern:
    def __init__(self, text: str) -> None:
        self.text = text
        match = _RANGE.match(text)
        body = match.group(1) if match else text
        self.rows: tuple[int, int | None] | None = None
        if match:
            start = int(match.group(2) or 0)
            end_text = match.group(3)
            # "[n]" is row n alone; "[a:b]" rows a..b-1; "[a:]" from a to the end
            end = start + 1 if end_text is None else (int(end_text) if end_text else None)
            if end is not None and start >= end:
                raise LatheError(f"unfrozen_parameters: {text!r}: the range end must be greater than its start")
            self.rows = (start, end)
        try:
            self.regex = re.compile(re.sub(r"\.(?!\+)", r"\\.", body))
        except re.error as exc:
            raise LatheError(f"unfrozen_parameters: {text!r} is not a valid regex: {exc}") from exc

    def matches(self, name: str) -> bool:
        return self.regex.match(name) is not None


def _row_mask(size: int, ranges: list[tuple[int, int | None]]) -> torch.Tensor:
    keep = torch.zeros(size, dtype=torch.bool)
    for start, end in ranges:
        keep[start:end] = True
    return keep


def _rows_only(keep: torch.Tensor):  # type: ignore[no-untyped-def]
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * keep.to(grad.device, grad.dtype)

    return hook


def freeze_except(cfg: Config, model: torch.nn.Module) -> None:
    """Apply ``unfrozen_parameters`` to ``model`` (nothing when unset)."""
    if not cfg.unfrozen_parameters:
        return
    patterns = [NamePattern(p) for p in cfg.unfrozen_parameters]
    if cfg.weight_decay and any(p.rows for p in patterns):
        raise LatheError("unfrozen_parameters: row ranges ([start:end]) need weight_decay: 0, "
                         "or weight decay would still change the frozen rows")
    trained = 0
    for name, param in model.named_parameters():
        hits = [p for p in patterns if p.matches(name)]
        param.requires_grad_(bool(hits))
        if not hits:
            continue
        trained += 1
        if all(p.rows for p in hits):
            keep = _row_mask(param.shape[0], [p.rows for p in hits if p.rows])
            param.register_hook(_rows_only(keep.view((-1,) + (1,) * (param.dim() - 1))))
    if trained == 0:
        raise LatheError(f"unfrozen_parameters: no parameter name matches {cfg.unfrozen_parameters}; nothing would train")
    print(f"lathe: unfrozen_parameters: {trained} parameter tensors trained, the rest frozen", file=sys.stderr)
