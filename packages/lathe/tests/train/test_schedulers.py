"""Axolotl's schedules: the LR at given steps against values computed by hand (peak 1e-3,
10 steps), and the settings a schedule would not read are refused."""

from __future__ import annotations

import pytest

from lathe.config.load import ConfigError
from tests.train.test_trainer import _lrs

LR = 1e-3


def test_cosine_min_lr_ratio_with_constant_tail(cfg_of) -> None:  # type: ignore[no-untyped-def]
    # warmup 2; cosine reaches 0.1·peak at int(10 × 0.6) = 6 and stays there
    got = _lrs(cfg_of, lr_scheduler="cosine", warmup_steps=2, cosine_min_lr_ratio=0.1, cosine_constant_lr_ratio=0.6)
    expected = [0.0, 5e-4, 1e-3, 8.6819805e-4, 5.5e-4, 2.3180195e-4, 1e-4, 1e-4, 1e-4, 1e-4]
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_cosine_min_lr_ratio_decays_to_the_floor_at_the_last_step(cfg_of) -> None:  # type: ignore[no-untyped-def]
    got = _lrs(cfg_of, lr_scheduler="cosine", warmup_steps=2, cosine_min_lr_ratio=0.2)
    # step 6: progress (6-2)/8 = 0.5 → 0.2 + 0.8·0.5 = 0.6; step 9: 0.2 + 0.8·0.5·(1+cos(7π/8))
    assert got[6] == pytest.approx(6e-4) and got[9] == pytest.approx(2.3044819e-4, rel=1e-6)


def test_rex(cfg_of) -> None:  # type: ignore[no-untyped-def]
    got = _lrs(cfg_of, lr_scheduler="rex", warmup_steps=2)
    # after warmup z = (8 - (s-2)) / 8 and lr = peak · z / (0.1 + 0.9 z)
    assert got[:3] == pytest.approx([0.0, 5e-4, 1e-3])
    assert got[3] == pytest.approx(9.8591549e-4, rel=1e-6)  # z = 7/8
    assert got[6] == pytest.approx(9.0909091e-4, rel=1e-6)  # z = 1/2
    assert got[9] == pytest.approx(5.8823529e-4, rel=1e-6)  # z = 1/8
    floor = _lrs(cfg_of, lr_scheduler="rex", warmup_steps=2, cosine_min_lr_ratio=0.5)
    assert floor[6] == pytest.approx(1e-3 * (0.5 + 0.5 * 0.9090909), rel=1e-6)


def test_quadratic_warmup(cfg_of) -> None:  # type: ignore[no-untyped-def]
    got = _lrs(cfg_of, lr_scheduler="cosine", warmup_steps=4, lr_quadratic_warmup=True)
    assert got[:5] == pytest.approx([0.0, 6.25e-5, 2.5e-4, 5.625e-4, 1e-3])
    assert got[7] == pytest.approx(5e-4)  # cosine half-way between step 4 and 10


def test_one_cycle(cfg_of) -> None:  # type: ignore[no-untyped-def]
    got = _lrs(cfg_of, lr_scheduler="one_cycle", warmup_steps=2)
    # starts at peak / 25, peaks at the end of warmup (step 1 = pct_start·10 − 1), ends at start / 1e4
    assert got[0] == pytest.approx(4e-5) and got[1] == pytest.approx(1e-3) and got[9] == pytest.approx(4e-9)


def test_transformers_schedules_take_lr_scheduler_kwargs(cfg_of) -> None:  # type: ignore[no-untyped-def]
    got = _lrs(cfg_of, lr_scheduler="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr": 1e-4})
    assert got[0] == pytest.approx(1e-3) and got[5] == pytest.approx(5.5e-4)
    poly = _lrs(cfg_of, lr_scheduler="polynomial", lr_scheduler_kwargs={"power": 2.0, "lr_end": 0.0})
    assert poly[5] == pytest.approx(1e-3 * 0.25)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"lr_scheduler": "linear", "cosine_min_lr_ratio": 0.1}, "cosine_min_lr_ratio is read only with lr_scheduler: cosine or rex"),
    ({"cosine_constant_lr_ratio": 0.8}, "cosine_constant_lr_ratio needs lr_scheduler: cosine and cosine_min_lr_ratio"),
    ({"lr_scheduler": "cosine", "lr_quadratic_warmup": True, "cosine_min_lr_ratio": 0.1}, "lr_quadratic_warmup needs"),
    ({"lr_scheduler": "rex", "lr_scheduler_kwargs": {"x": 1}}, "lr_scheduler_kwargs are not read by lr_scheduler: rex"),
    ({"lr_scheduler": "cosine_with_min_lr"}, "needs lr_scheduler_kwargs min_lr or min_lr_rate"),
    ({"lr_scheduler": "warmup_stable_decay"}, "needs lr_scheduler_kwargs num_decay_steps"),
    ({"lr_scheduler": "cosin"}, "did you mean 'cosine'"),
])
def test_settings_a_schedule_would_ignore_are_refused(cfg_of, overrides, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        cfg_of(**overrides)
