"""Dataset type kd.chat_template: teacher rows read, placed and rescaled per token."""

import math

import pytest

from lathe.data.strategies import build_strategy, strategy_registry
from lathe.errors import LatheError
from lathe.testing import chat_rows, tiny_tokenizer


def _strategy(cfg, plugins, **keys):  # type: ignore[no-untyped-def]
    from lathe.config import DatasetConfig

    entry = DatasetConfig(path="x.jsonl", type="kd.chat_template", **keys)
    return build_strategy(entry, 0, cfg, tiny_tokenizer(), strategy_registry(plugins))


def test_teacher_rows_follow_tokens(kd_cfg) -> None:  # type: ignore[no-untyped-def]
    cfg, plugins = kd_cfg()
    strat = _strategy(cfg, plugins, logprobs_field="lp")
    row = chat_rows(1)[0]
    n = len(strat.tokenize({**row, "lp": []})["input_ids"])
    lp = [None] + [[{"token": 7, "logprob": math.log(0.6)}, {"token": "token_id:9", "logprob": math.log(0.2)}]] * (n - 1)
    ex = strat.tokenize({**row, "lp": lp})
    assert len(ex["teacher_ids"]) == len(ex["teacher_logprobs"]) == len(ex["input_ids"]) == n
    assert ex["teacher_ids"][0] == [] and ex["teacher_ids"][1] == [7, 9]
    assert ex["teacher_logprobs"][1] == pytest.approx([math.log(0.75), math.log(0.25)])  # renormalised top-k


def test_short_list_covers_the_last_tokens(kd_cfg) -> None:  # type: ignore[no-untyped-def]
    cfg, plugins = kd_cfg()
    strat = _strategy(cfg, plugins)
    row = chat_rows(1)[0]
    n = len(strat.tokenize({**row, "logprobs": []})["input_ids"])
    ex = strat.tokenize({**row, "logprobs": [[{"token": 3, "logprob": -0.5}]] * 2})
    assert [len(t) for t in ex["teacher_ids"]] == [0] * (n - 2) + [1, 1]


def test_generation_and_kd_temperatures(kd_cfg) -> None:  # type: ignore[no-untyped-def]
    cfg, plugins = kd_cfg(kd_temperature=2.0, kd_normalize_topk=False)
    strat = _strategy(cfg, plugins, temperature=1.0)
    row = chat_rows(1)[0]
    top = [{"token": 1, "logprob": math.log(0.5)}, {"token": 2, "logprob": math.log(0.3)}]
    ex = strat.tokenize({**row, "logprobs": [top]})
    got = [math.exp(x) for x in ex["teacher_logprobs"][-1]]
    w = [0.5**0.5, 0.3**0.5]
    assert got == pytest.approx([0.8 * x / sum(w) for x in w])  # mass 0.8 kept, spread at T=2


@pytest.mark.parametrize(
    ("logprobs", "needle"),
    [([[{"token": 10**6, "logprob": -1.0}]], "outside the vocabulary"),
     ([[{"token": "cat", "logprob": -1.0}]], "token_id:N"),
     ("nope", "one entry per token")],
)
def test_bad_teacher_data_is_a_clear_error(kd_cfg, logprobs, needle) -> None:  # type: ignore[no-untyped-def]
    cfg, plugins = kd_cfg()
    strat = _strategy(cfg, plugins)
    with pytest.raises(LatheError, match=needle):
        strat.tokenize({**chat_rows(1)[0], "logprobs": logprobs})


def test_too_many_entries_and_unknown_keys(kd_cfg) -> None:  # type: ignore[no-untyped-def]
    cfg, plugins = kd_cfg()
    strat = _strategy(cfg, plugins)
    with pytest.raises(LatheError, match="entries for a conversation of"):
        strat.tokenize({**chat_rows(1)[0], "logprobs": [None] * 10_000})
    with pytest.raises(LatheError, match="did you mean 'logprobs_field'"):
        _strategy(cfg, plugins, logprob_field="x")
    with pytest.raises(LatheError, match="temperature"):
        _strategy(cfg, plugins, temperature=0)
