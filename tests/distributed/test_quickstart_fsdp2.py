"""Done-when of multi-process training: the quickstart config with ``fsdp_version: 2``, launched
with ``lathe train cfg.yaml --launcher torchrun -- --nproc_per_node 2`` on this CPU, writes a model
that plain transformers loads (a few steps: max_steps overridden)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from tests.distributed.conftest import weights
from tests.reliability.conftest import Workspace

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def test_quickstart_trains_with_fsdp2_under_torchrun(tmp_path: Path) -> None:
    for name in ("config.yaml", "make_assets.py"):
        shutil.copy(QUICKSTART / name, tmp_path / name)
    subprocess.run([sys.executable, "make_assets.py"], cwd=tmp_path, check=True, capture_output=True)
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg.update(max_steps=2, fsdp_version=2, fsdp_config={"auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                                         "transformer_layer_cls_to_wrap": "LlamaDecoderLayer"})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))

    ws = Workspace(tmp_path, tmp_path / "model")
    run = ws.lathe("train", "config.yaml", "--launcher", "torchrun", "--", "--nproc_per_node", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "--nproc_per_node 2" in run.stderr and run.stderr.count("saved to") == 1

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "outputs")
    trained, initial = weights(tmp_path / "outputs"), weights(tmp_path / "model")
    assert trained.keys() == initial.keys()
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)  # it trained
    assert sum(p.numel() for p in model.parameters()) == sum(t.numel() for t in initial.values())
