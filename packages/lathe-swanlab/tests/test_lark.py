"""Lark notifications on start, completion and error, signed as Lark's custom-bot API specifies,
checked by a webhook server on 127.0.0.1 that verifies signature and timestamp."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from lathe.hookspecs import hookimpl
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training
from lathe_swanlab import plugin as swanlab_plugin
from lathe_swanlab.lark import LarkNotifier, sign
from tests.lark_server import lark_webhook
from tests.runfiles import RUN_STATE_CRASHED, read_runs


def _cfg(tmp_path: Path, hook_url: str, secret: str | None, **overrides: object) -> dict:
    return base_config(tmp_path, plugins=["swanlab"], swanlab_project="lark-tests", swanlab_mode="offline",
                       swanlab_experiment_name="exp-lark", swanlab_lark_webhook_url=hook_url,
                       swanlab_lark_secret=secret, dataset_processes=1, max_steps=2, **overrides)


def test_signature_matches_larks_documented_example() -> None:
    # HMAC-SHA256 keyed by "timestamp\nsecret" over an empty message, base64 (Lark custom-bot docs)
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"1599360473\ndemo", b"", hashlib.sha256).digest()).decode()
    assert sign(1599360473, "demo") == expected
    body = LarkNotifier("http://x", "demo").payload("hi", now=1599360473)
    assert body == {"msg_type": "text", "content": {"text": "hi"}, "timestamp": "1599360473", "sign": expected}
    assert "sign" not in LarkNotifier("http://x").payload("hi")


def test_a_run_sends_started_and_completed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with lark_webhook(secret="bot-secret") as hook:
        run_training(_cfg(tmp_path, hook.url, "bot-secret"))
    assert hook.rejected == []
    started, completed = hook.accepted
    assert started.startswith("lathe | training started") and "Project: lark-tests" in started
    assert "Experiment: exp-lark" in started
    assert completed.startswith("lathe | training completed") and "train_loss:" in completed
    err = capsys.readouterr().err
    assert "registered Lark notifications with HMAC authentication" in err
    assert "bot-secret" not in err and "TOKEN-abc" not in err


def _failing_at_step(step: int) -> types.ModuleType:
    from transformers import TrainerCallback

    class Boom(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step == step:
                raise RuntimeError(f"planted failure at step {step}")

    module = types.ModuleType("boom")
    module.lathe_callbacks = hookimpl(lambda: [Boom()])  # type: ignore[attr-defined]
    return module


def test_a_failing_run_sends_the_error_and_crashes_the_swanlab_run(tmp_path: Path, swanlog: Path) -> None:
    plugins = Plugins.from_modules({"swanlab": swanlab_plugin, "boom": _failing_at_step(2)})
    with lark_webhook(secret="bot-secret") as hook, pytest.raises(RuntimeError, match="planted failure"):
        run_training(_cfg(tmp_path, hook.url, "bot-secret"), plugins)
    started, failed = hook.accepted
    assert started.startswith("lathe | training started")
    assert failed.startswith("lathe | training failed")
    assert "Error: RuntimeError: planted failure at step 2" in failed
    (run,) = read_runs(swanlog)
    assert run.finish.state == RUN_STATE_CRASHED and "planted failure" in run.finish.error
    assert [s for s, _ in run.scalars["loss"]] == [1]


def test_a_wrong_secret_is_rejected_by_the_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with lark_webhook(secret="the-real-secret") as hook:
        run_training(_cfg(tmp_path, hook.url, "a-wrong-secret"))
    assert hook.accepted == [] and len(hook.rejected) == 2
    err = capsys.readouterr().err
    assert "Lark refused the notification: sign match fail" in err
    assert "a-wrong-secret" not in err


def test_no_secret_sends_unsigned_messages(tmp_path: Path) -> None:
    with lark_webhook(secret=None) as hook, pytest.warns(UserWarning, match="no secret configured"):
        run_training(_cfg(tmp_path, hook.url, None))
    assert len(hook.accepted) == 2


def test_env_variables_configure_lark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with lark_webhook(secret="env-secret") as hook:
        monkeypatch.setenv("SWANLAB_LARK_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("SWANLAB_LARK_SECRET", "env-secret")
        run_training(_cfg(tmp_path, None, None))  # type: ignore[arg-type]
    assert len(hook.accepted) == 2 and hook.rejected == []


def test_an_unreachable_webhook_never_stops_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_training(_cfg(tmp_path, "http://127.0.0.1:9/open-apis/bot/v2/hook/TOKEN-x", "s"))
    assert result.losses
    err = capsys.readouterr().err
    assert "Lark notification not sent" in err and "TOKEN-x" not in err
