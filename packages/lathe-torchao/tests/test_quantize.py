"""`lathe quantize CFG` writes a model that plain transformers loads, and refuses what it cannot do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from lathe.cli.main import main
from lathe.testing import base_config, write_tiny_model

SCHEME = {"weight_dtype": "int4", "activation_dtype": "int8", "group_size": 32}


def _config(tmp_path: Path, **extra: object) -> Path:
    """A config whose output_dir holds a trained (here: freshly written) full model; no plugins: line."""
    out = write_tiny_model(tmp_path / "out")
    cfg = {**base_config(tmp_path, output_dir=str(out)), **extra}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _ids() -> torch.Tensor:
    return torch.randint(0, 512, (2, 16), generator=torch.Generator().manual_seed(0))


def _run(path: Path, *args: str) -> int:
    try:
        main(["quantize", str(path), *args])
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0


@pytest.mark.parametrize("quantize_embedding", [False, True])
def test_quantized_model_loads_with_from_pretrained(tmp_path: Path, quantize_embedding: bool) -> None:
    from transformers import AutoModelForCausalLM

    from lathe_torchao.cli import quantize_model
    from lathe_torchao.config import PTQBlock

    block = {**SCHEME, "quantize_embedding": quantize_embedding}
    path = _config(tmp_path, quantization=block)
    assert _run(path) == 0
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "quantized")
    weight = loaded.model.layers[0].self_attn.q_proj.weight
    assert type(weight).__name__ == "IntxUnpackedToInt8Tensor"
    embedding = type(loaded.model.embed_tokens.weight).__name__
    assert (embedding == "IntxUnpackedToInt8Tensor") is quantize_embedding

    reference = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    with torch.no_grad():
        exact = reference(input_ids=_ids()).logits
    quantize_model(reference, PTQBlock(**block))
    with torch.no_grad():
        expected = reference(input_ids=_ids()).logits
        got = loaded(input_ids=_ids()).logits
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, exact, atol=1e-4)  # it is quantized


def test_qat_block_is_used_when_there_is_no_quantization_block(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    assert _run(_config(tmp_path, qat=SCHEME)) == 0
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "quantized")
    assert type(loaded.lm_head.weight).__name__ == "IntxUnpackedToInt8Tensor"


def test_problems_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, qat=SCHEME, quantization=SCHEME)
    assert _run(path) == 2
    assert "qat: and quantization: are both set" in capsys.readouterr().err

    assert _run(_config(tmp_path)) == 2
    assert "needs a quantization: block" in capsys.readouterr().err

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _run(_config(tmp_path, quantization={"weight_dtype": "fp8", "activation_dtype": "fp8"})) == 2
    assert "runs this layout on CUDA only" in capsys.readouterr().err
    assert not (tmp_path / "out" / "quantized").exists()


def test_an_adapter_output_must_be_merged_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, quantization=SCHEME)
    (tmp_path / "out" / "adapter_config.json").write_text("{}")
    assert _run(path) == 2
    assert "merge it first (lathe merge-lora)" in capsys.readouterr().err
