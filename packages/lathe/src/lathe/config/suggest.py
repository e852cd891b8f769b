"""Did-you-mean for misspelt names, restricted to what can only be a typo.

A suggestion must never point to a name with another meaning: ``adamw_torch_8bit`` is not a
misspelling of ``adamw_torch`` (whole ``_`` parts dropped at the end), ``paged_adamw_8bit``
not of ``adamw_8bit`` (dropped at the start), ``lion_32bit`` not of ``lion_8bit`` (other
digits). So a candidate is offered only when its edit distance to the whole given name is
small, neither is the other with whole parts added at either end, and both carry the same
digits.
"""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute; one each)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _part_variant(a: str, b: str) -> bool:
    """Whether one name is the other with whole ``_``-separated parts added at the start or end."""
    pa, pb = a.split("_"), b.split("_")
    short, long = (pa, pb) if len(pa) < len(pb) else (pb, pa)
    n = len(short)
    return n < len(long) and (long[:n] == short or long[-n:] == short)


def typo_of(given: str, choices: Iterable[str]) -> str | None:
    """The one choice ``given`` is most likely a typo of, or None when none is close enough."""
    given_l = given.lower()
    limit = 1 if len(given_l) <= 5 else 2
    best: tuple[int, str] | None = None
    for choice in choices:
        c = choice.lower()
        if c == given_l:
            return choice
        if _part_variant(c, given_l) or _digits(c) != _digits(given_l):
            continue
        distance = edit_distance(given_l, c)
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, choice)
    return best[1] if best else None
