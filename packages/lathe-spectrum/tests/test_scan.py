"""Scanning a tiny model: which weights, their types, the JSON cache and its errors."""

import json
from pathlib import Path

import pytest
import torch

from lathe.errors import LatheError
from lathe.testing import tiny_model
from lathe_spectrum import scan as scan_mod
from lathe_spectrum.scan import cache_path, layer_type, load_or_scan, model_slug


@pytest.fixture
def model():  # type: ignore[no-untyped-def]
    return tiny_model("llama", num_hidden_layers=4)


def test_layer_types_group_layers_across_depth() -> None:
    assert layer_type("model.layers.3.self_attn.q_proj") == "self_attn.q_proj"
    assert layer_type("model.layers.12.mlp.experts.gate_up_proj") == "mlp.experts.gate_up_proj"
    assert layer_type("model.norm") == "model.norm"
    assert model_slug("Qwen/Qwen2-7B") == "Qwen_Qwen2_7B"


def test_scan_covers_every_matrix_but_embeddings_and_head(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = load_or_scan(model, "tiny", tmp_path / "snr")
    names = {layer.name for layer in result.layers}
    assert names == {
        f"model.layers.{i}.{kind}" for i in range(4)
        for kind in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
    }
    assert result.computed and result.path == tmp_path / "snr" / "snr_results_tiny.json"
    stored = json.loads(result.path.read_text())
    assert stored["layers"]["model.layers.2.mlp.down_proj"]["type"] == "mlp.down_proj"


def test_second_scan_reuses_the_cache_without_svd(model, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = load_or_scan(model, "tiny", tmp_path)
    calls = []
    monkeypatch.setattr(scan_mod.snr, "weight_snr", lambda w: calls.append(w) or 0.0)
    monkeypatch.setattr(torch.linalg, "svdvals", lambda *a, **k: pytest.fail("SVD on a cached model"))
    second = load_or_scan(model, "tiny", tmp_path)
    assert not second.computed and not calls
    assert second.layers == first.layers


def test_changed_weights_are_scanned_again(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load_or_scan(model, "tiny", tmp_path)
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight.add_(1.0)
    assert load_or_scan(model, "tiny", tmp_path).computed


def test_precomputed_spectrum_results_are_used_as_they_are(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    names = [layer.name for layer in load_or_scan(model, "scratch", tmp_path / "scratch").layers]
    spectrum_format = {name: {"snr": float(i), "type": layer_type(name)} for i, name in enumerate(names)}
    spectrum_format["lm_head"] = {"snr": 9.0, "type": "lm_head"}  # trained anyway: ignored
    path = cache_path(tmp_path, "org/model-x")
    path.write_text(json.dumps(spectrum_format))
    result = load_or_scan(model, "org/model-x", tmp_path)
    assert not result.computed
    assert {layer.name: layer.snr for layer in result.layers} == {n: float(i) for i, n in enumerate(names)}


def test_results_dir_that_is_a_file_is_a_clear_error(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "results").write_text("{}")
    with pytest.raises(LatheError, match=r"spectrum_snr_dir: .*results is a file"):
        load_or_scan(model, "tiny", tmp_path / "results")


def test_malformed_results_name_the_file_and_line(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cache_path(tmp_path, "tiny").write_text('{\n  "model.layers.0.mlp.up_proj": {"snr": 1.0,}\n}')
    with pytest.raises(LatheError, match=r"snr_results_tiny.json line 2: not valid JSON"):
        load_or_scan(model, "tiny", tmp_path)


def test_results_for_another_model_are_refused(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cache_path(tmp_path, "tiny").write_text(json.dumps({"transformer.h.0.attn.c_attn": {"snr": 1.0}}))
    with pytest.raises(LatheError, match=r'does not have, e.g. "transformer.h.0.attn.c_attn"'):
        load_or_scan(model, "tiny", tmp_path)


def test_results_without_snr_values_are_refused(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cache_path(tmp_path, "tiny").write_text(json.dumps({"model.layers.0.mlp.up_proj": {"type": "x"}}))
    with pytest.raises(LatheError, match=r'layer "model.layers.0.mlp.up_proj" needs a numeric "snr"'):
        load_or_scan(model, "tiny", tmp_path)
