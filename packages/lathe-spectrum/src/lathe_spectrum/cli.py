"""``lathe spectrum scan CFG``: compute (or read) the SNR table and show what would train."""

from __future__ import annotations

import click

from lathe.cli.main import config_argument, set_option


@click.group()
def spectrum() -> None:
    """Spectrum: rank weight matrices by signal-to-noise ratio."""


@spectrum.command()
@config_argument
@set_option
def scan(config: str, overrides: tuple[str, ...]) -> None:
    """Scan the model of CONFIG, cache the SNR results, and print them with the layers kept."""
    from lathe.config import load_config
    from lathe_spectrum.config import SpectrumConfig
    from lathe_spectrum.scan import load_or_scan
    from lathe_spectrum.select import top_layers

    cfg, _ = load_config(config, overrides)
    defaults = SpectrumConfig()
    fraction = getattr(cfg, "spectrum_top_fraction", defaults.spectrum_top_fraction)
    name = getattr(cfg, "spectrum_model_name", None) or cfg.base_model
    snr_dir = getattr(cfg, "spectrum_snr_dir", defaults.spectrum_snr_dir)

    model = _load_model(cfg)
    result = load_or_scan(model, name, snr_dir)
    kept = top_layers(result.layers, fraction)
    source = "computed" if result.computed else "read"
    click.echo(f"{source} {result.path}  (top fraction {fraction} per type)")
    width = max(len(layer.name) for layer in result.layers)
    type_width = max(len(layer.type) for layer in result.layers)
    click.echo(f"{'layer':<{width}}  {'type':<{type_width}}  {'snr':>10}  train")
    for layer in sorted(result.layers, key=lambda x: (x.type, -x.snr, x.name)):
        mark = "yes" if layer.name in kept else "-"
        click.echo(f"{layer.name:<{width}}  {layer.type:<{type_width}}  {layer.snr:>10.4f}  {mark}")
    click.echo(f"{len(kept)} of {len(result.layers)} weights train, plus embeddings and lm_head")


def _load_model(cfg):  # type: ignore[no-untyped-def]
    """The base model as the config names it, in its stored dtype, on CPU."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        cfg.base_model,
        revision=cfg.revision_of_model,
        trust_remote_code=cfg.trust_remote_code,
        dtype="auto",
        use_safetensors=None if cfg.allow_pickle_weights else True,
    )
