"""The conformance suite, and every config snippet of docs/plugins/swanlab.md (the seed's examples):
each validates, and each runs a short CPU training with SwanLab offline and Lark on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lathe.config import validate
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training
from lathe.testing.conformance import PluginConformance, yaml_blocks
from tests.lark_server import lark_webhook
from tests.runfiles import RUN_STATE_FINISHED, read_runs

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "swanlab.md"
SNIPPETS = yaml_blocks(DOC)


class TestSwanLabConformance(PluginConformance):
    plugin_name = "swanlab"
    distribution = "lathe-swanlab"
    config_snippet = "plugins: [swanlab]\nswanlab_project: conformance\nswanlab_mode: offline\n"
    train_overrides = {"dataset_processes": 1}


def _data(tmp_path: Path, snippet: str, **overrides: object) -> dict:
    keys = yaml.safe_load(snippet)
    return {**base_config(tmp_path, dataset_processes=1, max_steps=1), **keys, **overrides}


def test_docs_have_the_seed_examples() -> None:
    assert len(SNIPPETS) >= 10


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_documented_snippet_validates(snippet: str, tmp_path: Path) -> None:
    data = _data(tmp_path, snippet, swanlab_api_key="k")
    cfg = validate(data, Plugins.load(data["plugins"]))
    for key, value in yaml.safe_load(snippet).items():
        if key != "plugins":
            assert getattr(cfg, key) == value


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_documented_snippet_runs_offline_on_cpu(snippet: str, tmp_path: Path, swanlog: Path) -> None:
    keys = yaml.safe_load(snippet)
    with lark_webhook(secret=keys.get("swanlab_lark_secret")) as hook:
        offline = {"swanlab_mode": "offline"} if keys.get("swanlab_mode", "cloud") == "cloud" else {}
        lark = {"swanlab_lark_webhook_url": hook.url} if "swanlab_lark_webhook_url" in keys else {}
        run_training(_data(tmp_path, snippet, **offline, **lark))
    (run,) = read_runs(swanlog)
    assert run.finish.state == RUN_STATE_FINISHED and "loss" in run.scalars
    assert run.start.project == keys["swanlab_project"]
    assert len(hook.accepted) == (2 if lark else 0) and hook.rejected == []
