"""The forward process: the masking probability formula and which tokens may be masked."""

import math

import pytest
import torch

from lathe_diffusion.noise import NoiseSchedule, add_noise, eligible_tokens, segment_ids


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_mask_probability_formula(schedule: str) -> None:
    s = NoiseSchedule(schedule, min_ratio=0.2, max_ratio=0.7, num_steps=10, eps=0.05)
    t = torch.tensor([0.0, 0.3, 1.0])
    shaped = t if schedule == "linear" else 1 - torch.cos(t * math.pi / 2)
    expected = 0.2 + 0.5 * ((1 - 0.05) * shaped + 0.05)
    torch.testing.assert_close(s.mask_probability(t), expected)
    assert s.mask_probability(torch.tensor(1.0)).item() == pytest.approx(0.7)


def test_cosine_masks_less_than_linear_at_the_same_time() -> None:
    t = torch.tensor([0.25, 0.5, 0.75])
    lin = NoiseSchedule("linear").mask_probability(t)
    cos = NoiseSchedule("cosine").mask_probability(t)
    assert bool((cos < lin).all())


def test_times_lie_on_the_num_diffusion_steps_grid() -> None:
    g = torch.Generator().manual_seed(0)
    t = NoiseSchedule(num_steps=4).sample_times(1000, torch.device("cpu"), g)
    assert set(torch.unique(t).tolist()) == {0.25, 0.5, 0.75, 1.0}


def test_segments_from_packed_position_ids() -> None:
    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 0]])
    att = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
    assert segment_ids(att, pos).tolist() == [[1, 1, 1, 2, 2, 3, 0]]
    assert segment_ids(att, None).tolist() == [[1, 1, 1, 1, 1, 1, 0]]


def test_padding_special_and_prompt_tokens_are_never_masked() -> None:
    ids = torch.tensor([[5, 6, 7, 8, 2, 0, 0]])  # 2 = special (EOS), 0 = pad
    att = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, -100, 7, 8, 2, -100, -100]])
    ok = eligible_tokens(ids, att, labels, special_ids=[0, 2])
    assert ok.tolist() == [[False, False, True, True, False, False, False]]
    s = NoiseSchedule(min_ratio=1.0, max_ratio=1.0)  # mask everything eligible
    noised = add_noise(ids, segment_ids(att, None), ok, mask_token_id=99, schedule=s)
    assert noised.noisy_ids.tolist() == [[5, 6, 99, 99, 2, 0, 0]]


def test_each_packed_sample_draws_its_own_mask_level() -> None:
    g = torch.Generator().manual_seed(0)
    seg = torch.tensor([[1] * 50 + [2] * 50])
    ok = torch.ones_like(seg, dtype=torch.bool)
    s = NoiseSchedule(min_ratio=0.0, max_ratio=1.0, num_steps=1000, eps=0.0)
    noised = add_noise(torch.zeros_like(seg), seg, ok, 1, s, generator=g)
    p = noised.p_mask[0]
    assert len(set(p[:50].tolist())) == 1 and len(set(p[50:].tolist())) == 1
    assert p[0] != p[50]


def test_empirical_mask_rate_matches_p() -> None:
    g = torch.Generator().manual_seed(1)
    ids = torch.zeros(1, 20000, dtype=torch.long)
    ok = torch.ones_like(ids, dtype=torch.bool)
    s = NoiseSchedule(min_ratio=0.3, max_ratio=0.3)
    noised = add_noise(ids, torch.ones_like(ids), ok, 1, s, generator=g)
    assert noised.masked.float().mean().item() == pytest.approx(0.3, abs=0.02)
