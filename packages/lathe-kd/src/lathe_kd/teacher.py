"""Reading a teacher's top-k logprobs and putting them at the distillation temperature.

A dataset row holds, per token, the teacher's top-k as a list of
``{"token": id | "token_id:N", "logprob": float}``. The teacher sampled at the
generation temperature T_gen, so its logprobs are log softmax(z / T_gen) restricted
to the top-k. At the distillation temperature T_kd the same logits give

    log q_i = lp_i · T_gen / T_kd − logsumexp_k(lp · T_gen / T_kd)

(renormalised over the top-k, since the tail is unknown). With
``kd_normalize_topk: false`` the top-k keep the total probability mass the teacher
gave them, m = Σ_k exp(lp_k): log q_i + log m. With T_gen = T_kd that is exactly the
logprobs as given.
"""

from __future__ import annotations

import math
from typing import Any

from lathe.errors import LatheError


class TeacherDataError(LatheError):
    """A row's teacher logprobs cannot be read."""


def parse_token(token: Any, where: str) -> int:
    """A token is an int id or the string ``token_id:N``."""
    if isinstance(token, bool):
        raise TeacherDataError(f"{where}: token {token!r} is not an id or 'token_id:N'")
    if isinstance(token, int):
        return token
    if isinstance(token, str) and token.startswith("token_id:"):
        try:
            return int(token[len("token_id:") :])
        except ValueError:
            pass
    raise TeacherDataError(f"{where}: token {token!r} is not an id or 'token_id:N'")


def parse_position(entries: Any, where: str) -> tuple[list[int], list[float]]:
    """One position's top-k list → (ids, logprobs). ``None`` or ``[]`` means no teacher entry."""
    if entries is None:
        return [], []
    if not isinstance(entries, list):
        raise TeacherDataError(f"{where}: expected a list of {{token, logprob}}, got {type(entries).__name__}")
    ids, lps = [], []
    for entry in entries:
        if not isinstance(entry, dict) or "token" not in entry or "logprob" not in entry:
            raise TeacherDataError(f"{where}: each entry needs 'token' and 'logprob', got {entry!r}")
        lp = float(entry["logprob"])
        if math.isnan(lp) or lp > 1e-6:
            raise TeacherDataError(f"{where}: logprob {lp} is not a log-probability (must be <= 0)")
        ids.append(parse_token(entry["token"], where))
        lps.append(lp)
    return ids, lps


def rescale(logprobs: list[float], gen_temperature: float, kd_temperature: float, normalize: bool) -> list[float]:
    """The teacher's top-k logprobs at the distillation temperature (module docstring)."""
    if not logprobs:
        return []
    scaled = [lp * gen_temperature / kd_temperature for lp in logprobs]
    top = max(scaled)
    norm = top + math.log(sum(math.exp(s - top) for s in scaled))
    out = [s - norm for s in scaled]
    if not normalize:
        top_lp = max(logprobs)
        mass = top_lp + math.log(sum(math.exp(lp - top_lp) for lp in logprobs))
        out = [o + mass for o in out]
    return out
