"""The prepared-data cache: what its key covers, reuse, one writer among many, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import lathe.data.cache as cache_mod
import lathe.data.prepare as prepare_mod
from lathe.config import data_field
from lathe.config.schema import CoreConfig
from lathe.data.cache import cache_key, cached, data_field_values, is_data_field
from lathe.data.prepare import prepare_datasets
from lathe.hookspecs import hookimpl
from lathe.plugins import Plugins
from lathe.testing import alpaca_rows, tiny_tokenizer, write_jsonl

# A changed value for every data_field of the core schema. A new marked field without an
# entry here fails test_every_marked_field_is_covered, so no field can be left out.
CHANGED: dict[str, Any] = {
    "datasets": [{"path": "other.jsonl", "type": "completion"}],
    "test_datasets": [{"path": "t.jsonl", "type": "alpaca"}],
    "val_set_size": 0.1,
    "shuffle_merged_datasets": False,
    "dataset_exact_deduplication": True,
    "chat_template": "llama3",
    "chat_template_jinja": "{{ messages }}",
    "default_system_message": "Be brief.",
    "system_message_handling": "fold",
    "sequence_len": 256,
    "sample_packing": True,
    "eval_sample_packing": False,
    "train_on_inputs": True,
    "excess_length_strategy": "truncate",
    "tokenizer_config": "other-tokenizer",
    "tokenizer_use_fast": False,
    "tokenizer_use_mistral_common": True,
    "tokenizer_type": "PreTrainedTokenizerFast",
    "special_tokens": {"pad_token": "<|endoftext|>"},
    "tokens": ["<extra>"],
    "min_sample_len": 3,
    "eot_tokens": ["<|im_end|>"],
    "pretraining_sample_concatenation": True,
    "streaming_multipack_buffer_size": 64,
    "pretraining_dataset": [{"path": "c4.jsonl"}],
    "processor_type": "AutoProcessor",
    "processor_kwargs": {"max_pixels": 784},
    "image_size": 28,
    "image_resize_algorithm": "bicubic",
    "skip_prepare_dataset": True,
}


def _key(make_cfg: Any, tok: Any, plugins: Plugins | None = None, **overrides: Any) -> str:
    datasets = overrides.pop("datasets", [{"path": "a.jsonl", "type": "alpaca"}])
    return cache_key(make_cfg(datasets, plugins, **overrides), tok, ["files:x"], {})


def test_every_marked_field_is_covered() -> None:
    marked = {n for n in CoreConfig.model_fields if is_data_field(CoreConfig, n)}
    assert marked == set(CHANGED)


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_changing_each_marked_field_changes_the_key(make_cfg: Any, tok: Any, field: str) -> None:
    changed = {field: CHANGED[field]}
    if field == "pretraining_dataset":  # it replaces datasets
        changed["datasets"] = []
    assert _key(make_cfg, tok) != _key(make_cfg, tok, **changed)


def test_unmarked_fields_leave_the_key_alone(make_cfg: Any, tok: Any) -> None:
    assert _key(make_cfg, tok) == _key(make_cfg, tok, learning_rate=0.5, logging_steps=7)


class _PluginBlock(BaseModel):
    mode: str = "a"
    strength: float = data_field(1.0)


class _PluginModel(BaseModel):
    myplug_mode: str = data_field("plain")
    myplug_block: _PluginBlock = _PluginBlock()


def _plugins() -> Plugins:
    @hookimpl
    def lathe_config_model() -> type[BaseModel]:
        return _PluginModel

    return Plugins.from_modules({"myplug": types.SimpleNamespace(lathe_config_model=lathe_config_model)})


def test_plugin_data_fields_are_found_flat_and_nested(make_cfg: Any, tok: Any) -> None:
    plugins = _plugins()
    values = data_field_values(make_cfg([{"path": "a.jsonl", "type": "alpaca"}], plugins))
    assert values["myplug_mode"] == "plain" and values["myplug_block.strength"] == 1.0
    assert "myplug_block.mode" not in values
    base = _key(make_cfg, tok, plugins)
    assert base != _key(make_cfg, tok, plugins, myplug_mode="fancy")
    assert base != _key(make_cfg, tok, plugins, myplug_block={"strength": 2.0})
    assert base == _key(make_cfg, tok, plugins, myplug_block={"mode": "b"})


def test_tokenizer_and_version_are_in_the_key(make_cfg: Any, tok: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _key(make_cfg, tok)
    other = tiny_tokenizer()
    other.add_tokens(["<new>"])
    assert _key(make_cfg, other) != base
    templated = tiny_tokenizer()
    templated.chat_template = "{{ messages[0]['content'] }}"
    assert _key(make_cfg, templated) != base
    monkeypatch.setattr(cache_mod, "__version__", "9.9.9")
    assert _key(make_cfg, tok) != base


def test_second_run_loads_the_cache_and_new_content_rebuilds(
    make_cfg: Any, tok: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jsonl(alpaca_rows(8), tmp_path / "a.jsonl")
    cfg = make_cfg([{"path": str(path), "type": "alpaca"}], sequence_len=256)
    first = prepare_datasets(cfg, tok, Plugins())

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("tokenized again although the cache matches")

    monkeypatch.setattr(prepare_mod, "tokenize_dataset", refuse)
    again = prepare_datasets(cfg, tok, Plugins())
    assert again.path == first.path and again.train["input_ids"] == first.train["input_ids"]
    write_jsonl(alpaca_rows(9), path)
    with pytest.raises(AssertionError, match="tokenized again"):
        prepare_datasets(cfg, tok, Plugins())


def test_a_failed_write_leaves_nothing_that_loads(tmp_path: Path) -> None:
    def broken(folder: Path) -> None:
        (folder / "train").mkdir(parents=True)
        (folder / "train" / "half.arrow").write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cached(tmp_path, "k", broken)
    assert not (tmp_path / "k").exists() and not list(tmp_path.glob(".k.tmp-*"))
    folder, built = cached(tmp_path, "k", lambda f: f.mkdir())
    assert built and cache_mod.is_complete(folder)


_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from lathe.data.cache import cached
    root, key, log, hold = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
    def write(folder):
        folder.mkdir(parents=True)
        (folder / "rows").write_text("data")
        with log.open("a") as f:
            f.write("built\\n")
        time.sleep(hold)
    folder, built = cached(root, key, write)
    print(folder, (folder / "rows").read_text())
""")


def _child(tmp_path: Path, hold: float) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "root"), "key", str(tmp_path / "log"),
                             str(hold)], stdout=subprocess.PIPE, text=True, env=env)


def test_concurrent_processes_build_once_and_all_load(tmp_path: Path) -> None:
    children = [_child(tmp_path, hold=1.0) for _ in range(3)]
    outputs = [c.communicate(timeout=120)[0].split() for c in children]
    assert all(c.returncode == 0 for c in children)
    assert (tmp_path / "log").read_text() == "built\n"
    assert {tuple(o) for o in outputs} == {(str(tmp_path / "root" / "key"), "data")}


def test_a_writer_killed_mid_write_leaves_no_cache(tmp_path: Path) -> None:
    child = _child(tmp_path, hold=600.0)
    deadline = time.monotonic() + 60
    while not (tmp_path / "log").exists():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    root = tmp_path / "root"
    assert not (root / "key").exists() and list(root.glob(".key.tmp-*"))
    folder, built = cached(root, "key", lambda f: f.mkdir())
    assert built and not list(root.glob(".key.tmp-*"))
