"""Signal-to-noise ratio of one weight matrix, from its singular values and random matrix theory.

Model (Hartford et al., 2024, "Spectrum: Targeted Training on Signal to Noise Ratio"):
a trained weight ``W`` (n × m, n ≥ m after transposing) is a low-rank signal plus noise
with i.i.d. entries of standard deviation σ. By the Marchenko–Pastur law the singular
values of the noise part lie below ``σ·(√n + √m)`` (the upper edge of the MP bulk,
``σ·√n·(1 + √β)`` with ``β = m/n``). Singular values above that edge are signal.

σ is estimated from the median singular value, as Gavish & Donoho (2014, "The Optimal
Hard Threshold for Singular Values is 4/√3", eq. 9) do: a few large signal values barely
move the median, and the median singular value of an n × m noise matrix is
``σ·√(n·μ_β)``, where ``μ_β`` is the median of the MP law of ``XᵀX/n`` (unit variance).
So ``σ̂ = s_med / √(n·μ_β)``.

SNR is the paper's ratio: the sum of the singular values above the edge over the sum of
those at or below it. A matrix with no value below the edge has SNR ``inf``.
"""

from __future__ import annotations

import functools
import math

import torch

_GRID = 4096


@functools.lru_cache(maxsize=256)
def marchenko_pastur_median(beta: float) -> float:
    """Median of the Marchenko–Pastur law with ratio ``beta`` in (0, 1] and unit variance.

    The density ``√((λ₊−λ)(λ−λ₋)) / (2πβλ)`` on ``[λ₋, λ₊]``, ``λ± = (1 ± √β)²``, is
    integrated after substituting ``λ = λ₋ + (λ₊−λ₋)(1 − cos θ)/2``, which makes the
    integrand smooth on ``[0, π]`` (also at β = 1, where the density has a 1/√λ pole).
    """
    if not 0 < beta <= 1:
        raise ValueError(f"beta must be in (0, 1], got {beta}")
    lo, hi = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    half = (hi - lo) / 2
    step = math.pi / _GRID
    mid = (torch.arange(_GRID, dtype=torch.float64) + 0.5) * step
    mass = half**2 * torch.sin(mid) ** 2 / (2 * math.pi * beta * (lo + half * (1 - torch.cos(mid)))) * step
    cdf = torch.cumsum(mass, 0) / mass.sum()  # cdf[k]: mass up to the right edge of cell k
    edges = lo + half * (1 - torch.cos(torch.arange(1, _GRID + 1, dtype=torch.float64) * step))
    i = int(torch.searchsorted(cdf, torch.tensor(0.5, dtype=torch.float64)))
    below = float(cdf[i - 1]) if i > 0 else 0.0
    lam_below = float(edges[i - 1]) if i > 0 else lo
    frac = (0.5 - below) / (float(cdf[i]) - below)
    return lam_below + frac * (float(edges[i]) - lam_below)


def noise_edge(singular_values: torch.Tensor, n: int, m: int) -> float:
    """The largest singular value pure noise of the estimated σ would reach (n ≥ m)."""
    beta = m / n
    sigma = float(torch.quantile(singular_values.double(), 0.5)) / math.sqrt(n * marchenko_pastur_median(beta))
    return sigma * (math.sqrt(n) + math.sqrt(m))


def matrix_snr(weight: torch.Tensor) -> float:
    """SNR of a 2-D weight: Σ singular values above the MP edge / Σ those at or below it."""
    if weight.ndim != 2:
        raise ValueError(f"matrix_snr takes a 2-D weight, got shape {tuple(weight.shape)}")
    n, m = max(weight.shape), min(weight.shape)
    device = "cuda" if torch.cuda.is_available() else weight.device  # SVD is far faster on a GPU
    s = torch.linalg.svdvals(weight.detach().to(device, torch.float32)).cpu()
    edge = noise_edge(s, n, m)
    signal = float(s[s > edge].sum())
    noise = float(s[s <= edge].sum())
    return signal / noise if noise > 0 else math.inf


def weight_snr(weight: torch.Tensor) -> float:
    """SNR of a 2-D weight, or the mean SNR of the matrices of a stacked 3-D expert weight."""
    if weight.ndim == 3:
        return sum(matrix_snr(w) for w in weight) / weight.shape[0]
    return matrix_snr(weight)
