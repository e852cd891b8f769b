"""Examples cannot rot: every config under examples/ validates as written, and every config whose
directive says ``train ARCH`` trains 2 steps on a tiny stand-in of that architecture, offline
(the convention is examples/README.md)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lathe.config import load_config, read_yaml
from lathe.testing import alpaca_rows, chat_rows, text_rows, write_jsonl, write_tiny_model
from lathe.testing.models import ARCHITECTURES
from lathe.testing.vision import FAMILIES, write_tiny_vlm

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Directories whose config is not trained on a stand-in: the quickstart builds its own tiny model
# and data (run.sh).
NOT_CONFIG_DIRS = {"quickstart"}
DIRECTIVE = "# lathe-example:"


def _sharegpt_rows() -> list[dict[str, Any]]:
    """chat_rows in the ShareGPT layout (``conversations`` of ``from``/``value``)."""
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return [{"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in row["messages"]]}
            for row in chat_rows(16)]


def _teacher_logprob_rows() -> list[dict[str, Any]]:
    """Chats with top-3 teacher logprobs on their last tokens (lathe-kd's format; ids of the stand-in's vocabulary)."""
    rows = []
    for i, row in enumerate(chat_rows(16)):
        entries = [[{"token": (7 * i + 13 * j + k) % 400, "logprob": -0.5 * (k + 1)} for k in range(3)] for j in range(6)]
        rows.append({"messages_combined": row["messages"], "llm_text_generation_vllm_logprobs": entries})
    return rows


def _intel_pairs() -> list[dict[str, Any]]:
    """Preference pairs in the layout of argilla/distilabel-intel-orca-dpo-pairs (its question is in ``input``;
    chatml.intel reads ``question``, Intel/orca_dpo_pairs' name, so both are there)."""
    return [{"system": "You are terse.", "question": r["instruction"] + " " + r["input"],
             "input": r["instruction"] + " " + r["input"], "chosen": r["output"], "rejected": "nothing to reverse"}
            for r in alpaca_rows(16) if r["input"]]


def _intel_kto() -> list[dict[str, Any]]:
    """Rows in the layout of argilla/distilabel-intel-orca-kto: one completion and a desirable label."""
    return [{"question": p["question"], "completion": p["chosen"] if i % 2 else p["rejected"], "label": bool(i % 2)}
            for i, p in enumerate(_intel_pairs())]


def _gsm8k_rows() -> list[dict[str, Any]]:
    """Questions and '#### N' answers, as openai/gsm8k (main)."""
    return [{"question": f"What is {i} plus {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"} for i in range(16)]


def _math_shepherd_rows() -> list[dict[str, Any]]:
    """Step-labelled solutions in the layout of trl-lib/math_shepherd (stepwise_supervised)."""
    return [{"prompt": f"What is {i} plus {i}?", "completions": [f"{i} + {i} is {2 * i + i % 2}.", f"The answer is {2 * i}."],
             "labels": [i % 2 == 0, True]} for i in range(16)]


# Hub datasets the examples name → rows with the same columns, written to a local file in the test.
DATA_STAND_INS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "yahma/alpaca-cleaned": lambda: alpaca_rows(16),
    "mlabonne/FineTome-100k": _sharegpt_rows,
    "HuggingFaceTB/smoltalk": lambda: chat_rows(16),
    "HuggingFaceFW/fineweb-edu": lambda: text_rows(16),
    "axolotl-ai-co/evolkit-logprobs-pipeline-75k-v2-sample": _teacher_logprob_rows,
    "argilla/distilabel-intel-orca-dpo-pairs": _intel_pairs,
    "argilla/distilabel-intel-orca-kto": _intel_kto,
    "openai/gsm8k": _gsm8k_rows,
    "trl-lib/math_shepherd": _math_shepherd_rows,
}
# The overrides every training run gets (examples/README.md explains each).
CI_OVERRIDES = [
    "max_steps=2", "micro_batch_size=2", "gradient_accumulation_steps=1", "sequence_len=128",
    "val_set_size=0", "evals_per_epoch=null", "eval_steps=null", "saves_per_epoch=null", "save_steps=null",
    "flash_attention=false", "bf16=false", "tf32=false",
]


def _configs() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*/*.yaml") if p.parent.name not in NOT_CONFIG_DIRS)


CONFIGS = _configs()
IDS = [f"{p.parent.name}/{p.stem}" for p in CONFIGS]


def directive(path: Path) -> list[str]:
    """The words of the config's one ``# lathe-example:`` line."""
    lines = [line for line in path.read_text().splitlines() if line.startswith(DIRECTIVE)]
    assert len(lines) == 1, f"{path}: needs exactly one '{DIRECTIVE} train ARCH' or 'validate-only (why)' line"
    return lines[0][len(DIRECTIVE):].split()


def _load(path: Path, overrides: list[str]):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_config(path.name, overrides, check_data=True)


def test_every_example_dir_follows_the_convention() -> None:
    dirs = sorted(p for p in EXAMPLES.iterdir() if p.is_dir())
    assert len(dirs) >= 10
    for d in dirs:
        readme = d / "README.md"
        assert readme.is_file(), f"{d.name}: needs a README.md (what it trains, the hardware it needs)"
        if d.name in NOT_CONFIG_DIRS:
            continue
        assert list(d.glob("*.yaml")), f"{d.name}: no *.yaml config"
        lines = [line for line in readme.read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert len(lines) == 2, f"{readme}: two lines (what it trains; hardware), not {len(lines)}"


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_example_validates_as_written(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    words = directive(path)
    assert words and (words[0] == "train" or words[0].startswith("validate-only")), words
    if words[0] == "train":
        known = [*ARCHITECTURES, *FAMILIES]
        assert len(words) >= 2 and words[1] in known, f"{path}: 'train ARCH', ARCH one of {known}"
        assert all(w == "--set" or "=" in w for w in words[2:]), f"{path}: after ARCH only --set KEY=VALUE"
    else:
        assert "(" in " ".join(words), f"{path}: validate-only needs its reason in parentheses"
    monkeypatch.chdir(path.parent)
    _load(path, [])


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Tiny model of an architecture, built once per session."""
    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            folder = tmp_path_factory.mktemp(f"tiny-{arch}")
            built[arch] = (write_tiny_vlm(folder, arch) if arch in FAMILIES  # type: ignore[arg-type]
                           else write_tiny_model(folder, arch))  # type: ignore[arg-type]
        return built[arch]

    return get


def training_overrides(path: Path, arch: Path, tmp: Path, extra: list[str]) -> list[str]:
    """The ``--set`` list of examples/README.md for one config."""
    data, _ = read_yaml(path)
    sets = [f"base_model={arch}", f"output_dir={tmp / 'out'}", f"dataset_prepared_path={tmp / 'prepared'}", *CI_OVERRIDES]
    if data.get("tokenizer_config"):
        sets.append(f"tokenizer_config={arch}")
    for key in ("datasets", "test_datasets"):
        for i, entry in enumerate(data.get(key) or []):
            hub = entry.get("path", "")
            if (path.parent / hub).exists():
                continue
            assert hub in DATA_STAND_INS, f"{path}: no stand-in for dataset {hub!r}; add one to DATA_STAND_INS"
            local = write_jsonl(DATA_STAND_INS[hub](), tmp / "data" / f"{hub.replace('/', '__')}.jsonl")
            sets += [f"{key}.{i}.path={local}", f"{key}.{i}.name=null", f"{key}.{i}.split=train"]
    return [*sets, *(w for w in extra if w != "--set")]


TRAINED = [(p, i) for p, i in zip(CONFIGS, IDS, strict=True) if p.read_text().count(f"{DIRECTIVE} train ")]


@pytest.mark.parametrize("path", [p for p, _ in TRAINED], ids=[i for _, i in TRAINED])
def test_example_trains_two_steps_on_its_stand_in(
    path: Path, stand_ins: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lathe.train.run import train

    words = directive(path)
    overrides = training_overrides(path, stand_ins(words[1]), tmp_path, words[2:])
    workdir = shutil.copytree(path.parent, tmp_path / "example")  # what a run writes beside it stays in tmp
    monkeypatch.chdir(workdir)
    cfg, plugins = _load(path, overrides)
    result = train(cfg, plugins)
    history = [h for h in result.trainer.state.log_history if "loss" in h]
    assert result.trainer.state.global_step == 2, result.trainer.state.global_step
    # GRPO's loss is -mean advantage (≈ 0 by construction, either sign): only finite is asked of it
    signed = getattr(cfg, "rl", None) == "grpo"
    assert history and all(h["loss"] == h["loss"] and (signed or h["loss"] > 0) for h in history), history


def test_the_quickstart_leaves_a_report(tmp_path: Path) -> None:
    """examples/quickstart as run.sh runs it (its own assets, `lathe train` in a subprocess), cut to 4 steps."""
    import subprocess
    import sys

    work = shutil.copytree(EXAMPLES / "quickstart", tmp_path / "quickstart")
    subprocess.run([sys.executable, "make_assets.py"], cwd=work, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "lathe", "train", "config.yaml", "--set", "max_steps=4"],
                   cwd=work, check=True, capture_output=True)
    report = work / "outputs" / "report.html"
    assert report.is_file() and "<svg" in report.read_text()
