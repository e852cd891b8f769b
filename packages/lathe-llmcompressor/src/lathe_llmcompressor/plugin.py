"""lathe hook implementations for sparse fine-tuning with LLM Compressor recipes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from lathe.errors import LatheError
from lathe.hookspecs import hookimpl
from lathe_llmcompressor.config import LLMCompressorConfig


def _say(message: str) -> None:
    print(f"lathe: llmcompressor: {message}", file=sys.stderr)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


@hookimpl
def lathe_config_model() -> type[LLMCompressorConfig]:
    return LLMCompressorConfig


@hookimpl
def lathe_validate_config(cfg: Any) -> list[str]:
    from lathe_llmcompressor.recipe import parse_recipe

    block = cfg.llmcompressor
    if block is None:
        return []
    problems = []
    try:
        parse_recipe(block.recipe)
    except LatheError as exc:
        problems.append(str(exc))
    if cfg.adapter:
        problems += _adapter_problems(cfg, block.recipe)
    sharded = [key for key in ("deepspeed", "fsdp", "fsdp_config") if getattr(cfg, key, None)]
    if sharded:
        problems.append(f"llmcompressor: not available with {', '.join(sharded)}: the sparsity masks are kept on "
                        "whole weights, and sharded engines split them across processes; train the sparse "
                        "model on one process or with DDP")
    return problems


def _adapter_problems(cfg: Any, recipe: Any) -> list[str]:
    from lathe_llmcompressor.recipe import parse_recipe

    problems = []
    if cfg.adapter == "qlora" or cfg.load_in_4bit or cfg.load_in_8bit:
        problems.append("llmcompressor: a quantized base (qlora, load_in_4bit/8bit) has no exact zeros to keep; "
                        "use adapter: lora on the unquantized sparse model")
    if cfg.peft_use_dora:
        problems.append("llmcompressor: peft_use_dora is not supported: DoRA rescales whole columns of the weight")
    try:
        specs = parse_recipe(recipe)
    except LatheError:
        return problems  # reported once, above
    if any(spec.start != 0 or spec.end is not None for spec in specs):
        problems.append("llmcompressor: with an adapter the mask is the frozen base's zeros for the whole run; "
                        "ConstantPruningModifier start must be 0 and end unset")
    return problems


@hookimpl
def lathe_post_adapter_load(cfg: Any, model: Any) -> None:
    from lathe_llmcompressor.lora import mask_lora_updates
    from lathe_llmcompressor.recipe import parse_recipe

    if cfg.llmcompressor is None:
        return
    targets = [t for spec in parse_recipe(cfg.llmcompressor.recipe) for t in spec.targets]
    count = mask_lora_updates(model, targets)
    _say(f"the LoRA updates of {count} targeted weights are masked like the weights they adapt")


@hookimpl
def lathe_post_merge(cfg: Any, model: Any, path: Path) -> None:
    block = cfg.llmcompressor
    if block is not None and block.save_compressed:
        _compress(cfg, model, path)


@hookimpl
def lathe_callbacks(cfg: Any) -> list[Any]:
    from lathe_llmcompressor.mask import ConstantSparsityCallback
    from lathe_llmcompressor.recipe import parse_recipe, parser_in_use

    if cfg.llmcompressor is None:
        _say("enabled without an llmcompressor: block; nothing to do")
        return []
    specs = parse_recipe(cfg.llmcompressor.recipe)
    _say(f"recipe read by {parser_in_use()}'s parser: {len(specs)} ConstantPruningModifier(s)")
    return [ConstantSparsityCallback(specs)]


@hookimpl
def lathe_post_train(cfg: Any, model: Any) -> None:
    block = cfg.llmcompressor
    if block is None or not block.save_compressed or not _is_main_process():
        return
    out = Path(cfg.output_dir)
    if (out / "adapter_config.json").is_file():
        _say("save_compressed: output_dir holds the adapter (small and dense by design); "
             "`lathe merge-lora` writes the merged sparse model compressed")
        return
    _compress(cfg, model, out)


def _compress(cfg: Any, model: Any, folder: Path) -> None:
    from lathe_llmcompressor.compress import compress_folder
    from lathe_llmcompressor.recipe import parse_recipe
    from lathe_llmcompressor.targets import targeted_modules

    targets = [t for spec in parse_recipe(cfg.llmcompressor.recipe) for t in spec.targets]
    result = compress_folder(folder, sorted(targeted_modules(model, targets)))
    _say(
        f"saved {result.modules} weights as {result.format}: weights file {result.compressed_bytes:,} bytes "
        f"(dense {result.dense_bytes:,}, {100 * result.compressed_bytes / result.dense_bytes:.1f}%); targeted weights "
        f"{100 * result.target_compressed_bytes / result.target_dense_bytes:.1f}% of their dense size"
    )
