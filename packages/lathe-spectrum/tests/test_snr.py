"""The SNR of single matrices: the Marchenko–Pastur median, the noise edge, planted signals."""

import math

import pytest
import torch

from lathe_spectrum.snr import marchenko_pastur_median, matrix_snr, noise_edge, weight_snr


def _reference_mp_median(beta: float) -> float:
    """Plain Riemann sum of the MP density in λ on a fine grid (independent of the θ substitution)."""
    lo, hi = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    lam = torch.linspace(lo, hi, 2_000_001, dtype=torch.float64)[1:-1]
    dens = torch.sqrt((hi - lam) * (lam - lo)) / (2 * math.pi * beta * lam)
    cdf = torch.cumsum(dens, 0)
    return float(lam[torch.searchsorted(cdf / cdf[-1], torch.tensor(0.5, dtype=torch.float64))])


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_mp_median_matches_a_direct_integration(beta: float) -> None:
    assert marchenko_pastur_median(beta) == pytest.approx(_reference_mp_median(beta), abs=2e-4)


def test_mp_median_matches_random_matrices() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 1000, generator=g, dtype=torch.float64)
    eig = torch.linalg.eigvalsh(x.T @ x / 2000)
    assert float(eig.median()) == pytest.approx(marchenko_pastur_median(0.5), rel=0.01)


@pytest.mark.parametrize(("n", "m"), [(256, 256), (512, 128)])
def test_noise_edge_sits_at_the_largest_noise_singular_value(n: int, m: int) -> None:
    g = torch.Generator().manual_seed(1)
    noise = 0.02 * torch.randn(n, m, generator=g)
    s = torch.linalg.svdvals(noise)
    # σ(√n + √m) with σ = 0.02, recovered from the median alone
    assert noise_edge(s, n, m) == pytest.approx(0.02 * (math.sqrt(n) + math.sqrt(m)), rel=0.02)
    assert float(s.max()) == pytest.approx(noise_edge(s, n, m), rel=0.05)


def test_planted_low_rank_signal_outranks_pure_noise() -> None:
    g = torch.Generator().manual_seed(2)
    n, m = 128, 64
    noise = [0.05 * torch.randn(n, m, generator=g) for _ in range(3)]
    planted = []
    for strength in (0.5, 1.0, 2.0):
        u, v = torch.randn(n, 3, generator=g), torch.randn(3, m, generator=g)
        planted.append(0.05 * torch.randn(n, m, generator=g) + strength * 0.05 * u @ v)
    noise_snr = [matrix_snr(w) for w in noise]
    planted_snr = [matrix_snr(w) for w in planted]
    assert max(noise_snr) < min(planted_snr)
    assert planted_snr == sorted(planted_snr)  # more signal, higher SNR
    assert max(noise_snr) < 0.05


def test_snr_does_not_depend_on_orientation_or_scale() -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(96, 48, generator=g) + torch.randn(96, 2, generator=g) @ torch.randn(2, 48, generator=g)
    assert matrix_snr(w) == pytest.approx(matrix_snr(w.T), rel=1e-5)
    assert matrix_snr(w) == pytest.approx(matrix_snr(10 * w), rel=1e-5)


def test_stacked_expert_weights_average_their_matrices() -> None:
    g = torch.Generator().manual_seed(4)
    stack = torch.randn(3, 64, 32, generator=g)
    stack[1] += torch.randn(64, 2, generator=g) @ torch.randn(2, 32, generator=g)
    assert weight_snr(stack) == pytest.approx(sum(matrix_snr(w) for w in stack) / 3)
