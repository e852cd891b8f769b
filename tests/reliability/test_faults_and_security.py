"""Faults while preparing data, and the security promises: no code from configs, no pickles,
no secrets in logs or saved files."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.reliability.conftest import Workspace, assert_clean_failure


def _published(prepared: Path) -> list[Path]:
    return [p for p in prepared.iterdir() if p.is_dir() and not p.name.startswith(".")] if prepared.exists() else []


def test_kill_in_the_middle_of_preprocess_then_a_normal_run(ws: Workspace, faults_path: Path) -> None:
    env = {"PYTHONPATH": str(faults_path)}
    cfg = ws.config(plugins=["faults"], max_steps=1)
    killed = ws.lathe("preprocess", str(cfg), env={**env, "LATHE_TEST_SAVE_FAULT": "kill"})
    assert killed.returncode == -signal.SIGKILL
    assert _published(ws.root / "prepared") == [], "a half-written cache was published"
    again = ws.lathe("preprocess", str(cfg), env=env)
    assert again.returncode == 0, again.stderr
    assert _published(ws.root / "prepared")
    trained = ws.lathe("train", str(cfg), env=env)
    assert trained.returncode == 0, trained.stderr
    assert not [p for p in (ws.root / "prepared").iterdir() if ".tmp-" in p.name]


def test_full_disk_while_preparing_leaves_nothing_behind(ws: Workspace, faults_path: Path) -> None:
    env = {"PYTHONPATH": str(faults_path), "LATHE_TEST_SAVE_FAULT": "enospc"}
    result = ws.lathe("preprocess", str(ws.config(plugins=["faults"])), env=env)
    assert_clean_failure(result, "No space left on device", "dataset_prepared_path")
    prepared = ws.root / "prepared"
    assert not [p for p in prepared.iterdir() if p.is_dir()], list(prepared.iterdir())


def test_pickle_weights_refused_unless_allowed(ws: Workspace, tmp_path: Path) -> None:
    import torch

    from lathe.testing import tiny_model, tiny_tokenizer

    folder = tmp_path / "pickled"
    folder.mkdir()
    tok = tiny_tokenizer()
    model = tiny_model("llama", tok)
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    tok.save_pretrained(folder)
    result = ws.lathe("train", str(ws.config(base_model=str(folder), max_steps=1)))
    assert_clean_failure(result, "allow_pickle_weights")
    allowed = ws.lathe("train", str(ws.config(base_model=str(folder), max_steps=1, allow_pickle_weights=True,
                                              output_dir=str(tmp_path / "out2"))))
    assert allowed.returncode == 0, allowed.stderr


def test_remote_code_is_not_run_and_the_error_names_the_key(ws: Workspace, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(ws.model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "evilarch"  # no built-in class: only the shipped code could build it
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "evil-ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    result = ws.lathe("train", str(ws.config(base_model=str(folder), max_steps=1)))
    assert_clean_failure(result, "trust_remote_code")
    assert not marker.exists(), "code shipped with the model ran without trust_remote_code"


def test_secrets_never_reach_logs_or_saved_files(ws: Workspace) -> None:
    secret_cfg, secret_env, secret_extra = "hf_CONFIGSECRET123", "wb_ENVSECRET456", "hf_EXTRASECRET789"
    # a token passed straight to TrainingArguments used to reach training_args.bin (a pickle of
    # every argument) in each checkpoint and in the output
    cfg = ws.config(max_steps=2, hub_token=secret_cfg, wandb_api_key=secret_cfg + "x",
                    training_args_extra={"hub_token": secret_extra})
    result = ws.lathe("train", str(cfg), env={"WANDB_API_KEY": secret_env, "HF_TOKEN": secret_env})
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert secret_cfg not in output and secret_env not in output and secret_extra not in output
    files = [path for path in (ws.root / "out").rglob("*") if path.is_file()]
    assert any(path.parent.name == "checkpoint-2" for path in files)
    for path in files:
        data = path.read_bytes()
        for secret in (secret_cfg, secret_env, secret_extra):
            assert secret.encode() not in data, path
