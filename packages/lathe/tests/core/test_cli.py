"""The `lathe` command as a user meets it: clean messages, non-zero exits, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.fakeplugins import make_dist


def lathe(*args: str, env_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    if env_path is not None:
        env["PYTHONPATH"] = f"{env_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run([sys.executable, "-m", "lathe", *args], capture_output=True, text=True, env=env)


def _cfg(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "cfg.yaml"
    (tmp_path / "d.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    path.write_text(f"base_model: m\ndatasets:\n  - path: {tmp_path / 'd.jsonl'}\n    type: alpaca\n" + extra)
    return path


def test_validate_ok_and_overrides(tmp_path: Path) -> None:
    result = lathe("config", "validate", str(_cfg(tmp_path)), "--set", "learning_rate=1e-4")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("learning_rat: 1\n", "did you mean 'learning_rate'"),
        ("plugins: [nonexistent]\n", '"nonexistent"'),
        ("sequence_len: [\n", "malformed YAML"),
        ("micro_batch_size: 0\n", "micro_batch_size (line 5)"),
        ("chat_template: qwen\n", "'qwen' is not supported: ambiguous (Qwen2, Qwen2.5 and Qwen3 differ)"),
        ("chat_template: gemma_3\n", "unknown template 'gemma_3'; did you mean 'gemma3'?"),
        ("  - path: e.jsonl\n    type: chat_template\n    chat_template: command_a\n",
         "chat_template: 'command_a' is not supported"),
    ],
)
def test_bad_config_exits_2_without_traceback(tmp_path: Path, extra: str, expected: str) -> None:
    result = lathe("config", "validate", str(_cfg(tmp_path, extra)))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reports_every_problem_preprocess_would_find(tmp_path: Path) -> None:
    extra = (
        "plugins: [not_a_plugin]\nrl_beta: 0.1\nchat_template: not_a_template\ngradio_title: x\n"
        "test_datasets:\n"
        "  - path: ./missing.jsonl\n    type: chat_template\n    field_messages: conversations\n"
        "    field_thinking: reasoning\n    chat_template: qwen3\n"
        "  - path: org/hub-dataset\n    type: pygmalion\n"
        "  - path: org/other\n    type: alpaca\n    field_instrction: q\n"
        "  - path: org/third\n    type: chat_templte\n"
        "val_set_size: 0\ngradient_checkpointing: maybe\n"
    )
    result = lathe("config", "validate", str(_cfg(tmp_path, extra)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    err = result.stderr
    expected = [
        'plugins (line 5): plugin "not_a_plugin" named in `plugins` is not installed',
        "rl_beta (line 6): this key is implemented by plugin 'rl', which is not installed; pip install lathe-rl",
        "gradio_title (line 8): not available in lathe: the Gradio UI",
        "test_datasets[0].field_thinking (line 13): not available in lathe",
        "chat_template (line 7): given 'not_a_template': unknown template 'not_a_template'",
        "test_datasets[0].path (line 10): no such file or folder: ./missing.jsonl",
        "test_datasets[1].type (line 16): 'pygmalion' is an Axolotl dataset type lathe does not provide yet",
        "test_datasets[2].field_instrction (line 19): unknown key for this dataset type; did you mean 'field_instruction'?",
        "test_datasets[3].type (line 21): unknown prompt strategy 'chat_templte'; did you mean 'chat_template'?",
        "gradient_checkpointing (line 23): given 'maybe': expected a valid boolean or 'offload'",
    ]
    for line in expected:
        assert line in err, f"{line!r} not in:\n{err}"
    assert err.count("rl_beta (line 6)") == 1  # the missing plugin is said once, at the key
    assert "org/hub-dataset" not in err  # hub ids are not looked up
    assert ".py" not in err and "gradient_checkpointing.bool" not in err  # no lines of lathe's source, no pydantic branches


def test_missing_config_file(tmp_path: Path) -> None:
    result = lathe("train", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "config file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_plugins_lists_broken_ones_and_the_rest(plugin_dir: Path) -> None:
    make_dist(plugin_dir, "fake-broken", "broken", "fake_broken", "import not_a_module_xyz")
    result = lathe("plugins", "--json", env_path=plugin_dir)
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert "No module named 'not_a_module_xyz'" in listed["broken"]["error"]
    assert listed["broken"]["distribution"] == "fake-broken"


def test_schema_is_json_schema_of_core() -> None:
    result = lathe("config", "schema")
    schema = json.loads(result.stdout)
    assert "learning_rate" in schema["properties"]
    assert schema["additionalProperties"] is False


def test_help_does_not_import_torch() -> None:
    code = "import sys\nfrom lathe.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_plugin_commands_are_added(plugin_dir: Path) -> None:
    code = '''
import click
from lathe.hookspecs import hookimpl

@hookimpl
def lathe_register_commands(cli):
    @cli.command("hello")
    def hello():
        """Say hello."""
        click.echo("hello from plugin")
'''
    make_dist(plugin_dir, "fake-cmd", "cmd", "fake_cmd", code)
    result = lathe("hello", env_path=plugin_dir)
    assert result.returncode == 0, result.stderr
    assert "hello from plugin" in result.stdout
