"""Reading teacher top-k entries and rescaling them to the distillation temperature."""

import math

import pytest

from lathe_kd.teacher import TeacherDataError, parse_position, rescale


def test_tokens_as_ids_or_token_id_strings() -> None:
    ids, lps = parse_position([{"token": 5, "logprob": -0.1}, {"token": "token_id:17", "logprob": -2.5}], "row 0")
    assert ids == [5, 17] and lps == [-0.1, -2.5]
    assert parse_position(None, "row 0") == ([], [])


@pytest.mark.parametrize(
    ("entries", "needle"),
    [([{"token": "dog", "logprob": -1}], "'dog'"), ([{"token": 3}], "'token' and 'logprob'"),
     ([{"token": 3, "logprob": 0.5}], "must be <= 0"), ("x", "expected a list")],
)
def test_bad_entries_name_the_row(entries, needle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TeacherDataError, match="row 7") as err:
        parse_position(entries, "row 7")
    assert needle in str(err.value)


def test_rescale_formula() -> None:
    lps = [math.log(0.5), math.log(0.3), math.log(0.1)]  # top-3 mass 0.9
    out = rescale(lps, gen_temperature=1.0, kd_temperature=2.0, normalize=True)
    w = [p ** 0.5 for p in (0.5, 0.3, 0.1)]
    assert out == pytest.approx([math.log(x / sum(w)) for x in w])
    kept = rescale(lps, 1.0, 2.0, normalize=False)
    assert sum(math.exp(x) for x in kept) == pytest.approx(0.9)
    assert rescale(lps, 1.0, 1.0, normalize=False) == pytest.approx(lps)
    assert sum(math.exp(x) for x in rescale(lps, 1.0, 1.0, normalize=True)) == pytest.approx(1.0)
    sharper = rescale(lps, 1.0, 0.5, normalize=True)
    assert math.exp(sharper[0]) > 0.5 / 0.9
