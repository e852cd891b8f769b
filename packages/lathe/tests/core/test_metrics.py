from lathe.metrics import CompletionLog, StepMetrics


def test_train_and_eval_values_average_into_their_own_log_lines() -> None:
    metrics = StepMetrics()
    metrics.add("train", "acc", 0.5)
    metrics.add("train", "acc", 1.0)
    metrics.add("eval", "acc", 0.25)
    assert metrics.recorded("train", "acc") == [0.5, 1.0]
    other: dict[str, float] = {"learning_rate": 1e-3}
    metrics.flush_into(other)  # not a loss line: nothing flushed
    assert other == {"learning_rate": 1e-3}
    train = {"loss": 2.0}
    metrics.flush_into(train)
    assert train == {"loss": 2.0, "acc": 0.75}
    evaluation = {"eval_loss": 1.0}
    metrics.flush_into(evaluation)
    assert evaluation == {"eval_loss": 1.0, "eval_acc": 0.25}
    again = {"loss": 1.0}
    metrics.flush_into(again)
    assert again == {"loss": 1.0}


def test_completion_log_hands_rows_to_subscribers_and_keeps_nothing_without_one() -> None:
    log = CompletionLog("dpo")
    log.add(1, prompt="p0", chosen="a", rejected="b")  # no subscriber yet: dropped
    seen: list[tuple[int, dict]] = []
    log.subscribe(lambda step, row: seen.append((step, row)))
    log.add(2, prompt="p1", chosen="c", rejected="d", reward_diff=0.5)
    assert log.kind == "dpo"
    assert seen == [(2, {"prompt": "p1", "chosen": "c", "rejected": "d", "reward_diff": 0.5})]
