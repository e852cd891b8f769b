"""`lathe inference` line commands that plugins add with lathe_inference_commands."""

from __future__ import annotations

import types

import pytest

from lathe.hookspecs import hookimpl
from lathe.plugins import PluginError, Plugins


def _plugin(name: str, command: str) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def lathe_inference_commands(cfg):  # type: ignore[no-untyped-def]
        return {command: lambda model, tokenizer, rest: f"{name}:{rest.upper()}"}

    module.lathe_inference_commands = lathe_inference_commands  # type: ignore[attr-defined]
    return module


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import lathe.models.trained

    monkeypatch.setattr(lathe.models.trained, "load_trained", lambda cfg, plugins: (object(), object()))


def test_a_colon_line_runs_the_plugins_command(no_model: None, capsys: pytest.CaptureFixture[str]) -> None:
    from lathe.infer import run_inference

    plugins = Plugins.from_modules({"shout": _plugin("shout", "shout")})
    answers = run_inference(types.SimpleNamespace(), plugins, prompt=":shout hello there")
    assert answers == ["shout:HELLO THERE"]
    assert "shout:HELLO THERE" in capsys.readouterr().out


def test_two_plugins_adding_one_command_is_an_error(no_model: None) -> None:
    from lathe.infer import run_inference

    plugins = Plugins.from_modules({"a": _plugin("a", "go"), "b": _plugin("b", "go")})
    with pytest.raises(PluginError, match="'a' and 'b' both set 'go'"):
        run_inference(types.SimpleNamespace(), plugins, prompt=":go x")
