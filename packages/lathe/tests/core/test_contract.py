"""Meta-tests: the contract is documented, and a real run fires every hook in DESIGN.md's order."""

from __future__ import annotations

import inspect
import types
from pathlib import Path

import pytest

from lathe import hookspecs
from lathe.config.reference import render_reference
from lathe.hookref import render_hooks
from lathe.plugins import Plugins

ROOT = Path(__file__).resolve().parents[4]
SPECS = sorted(n for n, f in vars(hookspecs).items() if n.startswith("lathe_") and callable(f))


@pytest.mark.parametrize("name", SPECS)
def test_every_hook_has_rule_docstring_and_docs_entry(name: str) -> None:
    func = getattr(hookspecs, name)
    assert func.combine in ("all", "merge", "exclusive")
    assert inspect.getdoc(func), f"{name} has no docstring"
    guide = (ROOT / "docs" / "plugins.md").read_text()
    assert f"`{name}(" in guide, f"{name} is missing from docs/plugins.md"
    assert f"| {func.combine} |" in guide.split(f"`{name}(")[1].split("\n")[0]


def test_config_reference_is_current() -> None:
    committed = (ROOT / "docs" / "config-reference.md").read_text()
    assert committed == render_reference(), "run: python -m lathe.config.reference > docs/config-reference.md"


def test_hook_reference_is_current() -> None:
    committed = (ROOT / "docs" / "hooks.md").read_text()
    assert committed == render_hooks(), "run: python -m lathe.hookref > docs/hooks.md"
    assert committed.count("\n## `lathe_") == len(SPECS)


def _recorder(calls: list[str], fail_in: str | None = None) -> types.ModuleType:
    """A plugin implementing every hook that only records that it fired (and raises in ``fail_in``)."""
    module = types.ModuleType("recorder")
    for name in SPECS:
        params = list(inspect.signature(getattr(hookspecs, name)).parameters)

        def impl(*args, _name=name):  # type: ignore[no-untyped-def]
            calls.append(_name)
            if _name == fail_in:
                raise RuntimeError(f"planted failure in {_name}")

        impl.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params]
        )
        impl.__name__ = name
        setattr(module, name, hookspecs.hookimpl(impl))
    return module


@pytest.mark.parametrize("adapter", [None, "lora"])
def test_a_run_fires_the_hooks_in_order(tmp_path: Path, adapter: str | None) -> None:
    from lathe.testing import base_config, run_training

    calls: list[str] = []
    plugins = Plugins.from_modules({"recorder": _recorder(calls)})
    overrides = {"adapter": adapter, "lora_target_linear": True} if adapter else {}
    run_training(base_config(tmp_path, max_steps=1, **overrides), plugins)
    fired = [c for i, c in enumerate(calls) if c not in calls[:i]]
    expected = [
        "lathe_config_model", "lathe_validate_config", "lathe_pre_model_load",
        "lathe_post_tokenizer_load", "lathe_post_model_build",
        *(["lathe_pre_adapter_load", "lathe_post_adapter_load"] if adapter else []),
        "lathe_post_model_load", "lathe_post_trainer_create", "lathe_post_train", "lathe_post_train_unload",
    ]
    order = [c for c in fired if c in expected]
    assert order == expected, fired
    for name in ("lathe_trainer_cls", "lathe_training_args", "lathe_collator", "lathe_optimizer",
                 "lathe_lr_scheduler", "lathe_callbacks", "lathe_prompt_strategies"):
        assert name in fired, f"{name} never fired"
    assert fired.index("lathe_trainer_cls") < fired.index("lathe_post_trainer_create")
    assert calls[-1] == "lathe_post_train_unload"
    assert "lathe_run_error" not in fired


def test_a_failing_run_fires_run_error_then_unload(tmp_path: Path) -> None:
    from lathe.testing import base_config, run_training

    calls: list[str] = []
    plugins = Plugins.from_modules({"recorder": _recorder(calls, fail_in="lathe_post_train")})
    with pytest.raises(RuntimeError, match="planted failure in lathe_post_train"):
        run_training(base_config(tmp_path, max_steps=1), plugins)
    assert calls[-3:] == ["lathe_post_train", "lathe_run_error", "lathe_post_train_unload"]
    assert calls.count("lathe_run_error") == 1


def test_a_failing_run_error_hook_does_not_hide_the_runs_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from lathe.testing import base_config, run_training

    calls: list[str] = []
    plugins = Plugins.from_modules({"recorder": _recorder(calls, fail_in="lathe_run_error")})
    bad = base_config(tmp_path, max_steps=1, base_model=str(tmp_path / "missing-model"))
    with pytest.raises(Exception) as info:
        run_training(bad, plugins)
    assert "planted failure" not in str(info.value)
    assert "lathe_run_error failed" in capsys.readouterr().err
    assert calls[-2:] == ["lathe_run_error", "lathe_post_train_unload"]


def test_merge_lora_loads_the_adapter_through_the_hooks_and_fires_post_merge(tmp_path: Path) -> None:
    """A saved adapter loaded for merging passes lathe_post_adapter_load (a plugin that changes
    adapter layers in training changes them here too); lathe_post_merge sees the written folder."""
    from lathe.infer import merge_lora
    from lathe.testing import base_config, run_training

    cfg = base_config(tmp_path, max_steps=1, adapter="lora", lora_target_linear=True)
    run_training(cfg)
    calls: list[str] = []
    seen: dict[str, object] = {}
    recorder = _recorder(calls)
    recorder.lathe_post_merge = hookspecs.hookimpl(lambda cfg, model, path: seen.update(path=path))  # type: ignore[attr-defined]
    plugins = Plugins.from_modules({"recorder": recorder})
    from lathe.config import validate

    target = merge_lora(validate(cfg, plugins), plugins)
    assert "lathe_post_adapter_load" in calls
    assert seen["path"] == target and (target / "config.json").is_file()
