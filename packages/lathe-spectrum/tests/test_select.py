"""Keeping the top fraction per layer type and freezing the rest."""

from collections import Counter
from pathlib import Path

import pytest
import torch

from lathe.testing import tiny_model
from lathe_spectrum.scan import LayerSNR, load_or_scan
from lathe_spectrum.select import freeze_all_but, top_layers


@pytest.mark.parametrize(("fraction", "per_type"), [(0.25, 1), (0.5, 2), (0.75, 3), (1.0, 4), (0.2, 0)])
def test_kept_fraction_per_type_matches_the_setting(tmp_path: Path, fraction: float, per_type: int) -> None:
    model = tiny_model("llama", num_hidden_layers=4)
    layers = load_or_scan(model, "tiny", tmp_path).layers
    kept = top_layers(layers, fraction)
    types = {layer.name: layer.type for layer in layers}
    counts = Counter(types[name] for name in kept)
    assert len(kept) == 7 * per_type
    assert all(counts[t] == per_type for t in set(types.values()) if per_type)


def test_highest_snr_layers_of_each_type_win() -> None:
    layers = [LayerSNR(f"l.{i}.q", "q", snr) for i, snr in enumerate([0.1, 3.0, 0.2, 2.0])]
    layers += [LayerSNR(f"l.{i}.v", "v", snr) for i, snr in enumerate([5.0, 0.0, 0.0, 1.0])]
    assert top_layers(layers, 0.5) == {"l.1.q", "l.3.q", "l.0.v", "l.3.v"}


def test_planted_signal_layer_is_kept_and_noise_twins_are_frozen(tmp_path: Path) -> None:
    model = tiny_model("llama", num_hidden_layers=4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in model.model.layers:  # pure noise everywhere ...
            layer.self_attn.o_proj.weight.copy_(0.02 * torch.randn(64, 64, generator=g))
        # ... except a rank-2 signal in layer 2
        signal = torch.randn(64, 2, generator=g) @ torch.randn(2, 64, generator=g)
        model.model.layers[2].self_attn.o_proj.weight.add_(0.02 * signal)
    kept = top_layers(load_or_scan(model, "tiny", tmp_path).layers, 0.25)
    assert [n for n in kept if n.endswith("o_proj")] == ["model.layers.2.self_attn.o_proj"]


def test_freeze_keeps_selected_weights_embeddings_and_head(tmp_path: Path) -> None:
    model = tiny_model("qwen2")  # q/k/v have biases
    summary = freeze_all_but(model, {"model.layers.1.self_attn.q_proj", "model.layers.0.mlp.down_proj"})
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "model.embed_tokens.weight", "lm_head.weight",
        "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.bias",
        "model.layers.0.mlp.down_proj.weight",
    }
    assert summary.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert summary.total == sum(p.numel() for p in model.parameters())
