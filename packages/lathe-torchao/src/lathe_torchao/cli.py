"""``lathe quantize CFG``: post-training quantization of what ``lathe train`` saved, with torchao."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lathe.cli.main import config_argument, set_option


@click.command()
@config_argument
@set_option
@click.option("--model", "model_dir", type=click.Path(file_okay=False), default=None,
              help="Quantize this model directory instead of the config's output_dir.")
def quantize(config: str, overrides: tuple[str, ...], model_dir: str | None) -> None:
    """Quantize the trained model of CONFIG with its `quantization:` (or `qat:`) block and write it
    to OUTPUT_DIR/quantized, loadable with transformers' from_pretrained."""
    from lathe.config import load_config

    cfg, _ = load_config(config, overrides)
    out = quantize_trained(cfg, Path(model_dir) if model_dir else None)
    click.echo(f"lathe: quantized model written to {out}")


def quantize_trained(cfg: Any, model_dir: Path | None = None) -> Path:
    from lathe.errors import LatheError

    block = _block(cfg)
    source = model_dir or Path(cfg.output_dir)
    if (source / "adapter_config.json").is_file():
        raise LatheError(f"{source} holds a LoRA adapter; merge it first (lathe merge-lora) and quantize "
                         "the merged model with --model")
    if not (source / "config.json").is_file():
        raise LatheError(f"{source} holds no trained model; run `lathe train` with this config first")
    import torch

    from lathe_torchao.schemes import needs_cuda

    if needs_cuda(block) and not torch.cuda.is_available():
        raise LatheError(f"weight_dtype {block.weight_dtype} / activation_dtype {block.activation_dtype}: "
                         "torchao runs this layout on CUDA only; on CPU use weight_dtype: int4 with "
                         "activation_dtype: int8")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(source), dtype="auto",
                                                 device_map="cuda" if needs_cuda(block) else None)
    quantize_model(model, block)
    target = Path(cfg.output_dir) / "quantized"
    model.save_pretrained(str(target))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(target))
    print(f"lathe: torchao: {block.weight_dtype} weights"
          f"{f', {block.activation_dtype} activations' if block.activation_dtype else ''} → {target}",
          file=sys.stderr)
    return target


def quantize_model(model: Any, block: Any) -> None:
    """Quantize in place and record the torchao config on the model, so ``save_pretrained`` writes
    the quantized tensors and ``from_pretrained`` rebuilds them."""
    from torchao.quantization import quantize_
    from transformers import TorchAoConfig
    from transformers.quantizers.quantizer_torchao import TorchAoHfQuantizer

    from lathe_torchao.schemes import embedding_config, is_embedding, linear_config

    quantize_(model, linear_config(block))
    if block.quantize_embedding:
        quantize_(model, embedding_config(block), filter_fn=is_embedding)
    ao_config = TorchAoConfig(quant_type=linear_config(block),
                              include_input_output_embeddings=bool(block.quantize_embedding))
    model.config.quantization_config = ao_config
    model.hf_quantizer = TorchAoHfQuantizer(ao_config)  # save_pretrained flattens the torchao tensors


def _block(cfg: Any) -> Any:
    from lathe.errors import LatheError

    qat, ptq = getattr(cfg, "qat", None), getattr(cfg, "quantization", None)  # absent: no torchao key at all
    if qat is not None and ptq is not None:
        raise LatheError("qat: and quantization: are both set; lathe quantize uses one of them: remove the other")
    block = ptq if ptq is not None else qat
    if block is None:
        raise LatheError("lathe quantize needs a quantization: block (or the qat: block the model was trained with)")
    return block
