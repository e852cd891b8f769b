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
        problems.append(
            f"llmcompressor: adapter: {cfg.adapter} is not supported yet: a LoRA update is dense, so merging it "
            "would fill the pruned weights; fine-tune the sparse weights fully (remove adapter)"
        )
    if cfg.deepspeed or cfg.fsdp or cfg.fsdp_config:
        problems.append(
            "llmcompressor: sparse fine-tuning masks whole weights on one process; it is not supported with "
            "deepspeed or fsdp (their sharded weights would be masked piecewise); use one GPU or DDP"
        )
    return problems


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
    from lathe_llmcompressor.compress import compress_folder
    from lathe_llmcompressor.recipe import parse_recipe
    from lathe_llmcompressor.targets import targeted_modules

    block = cfg.llmcompressor
    if block is None or not block.save_compressed or not _is_main_process():
        return
    out = Path(cfg.output_dir)
    targets = [t for spec in parse_recipe(block.recipe) for t in spec.targets]
    result = compress_folder(out, sorted(targeted_modules(model, targets)))
    _say(
        f"saved {result.modules} weights as {result.format}: weights file {result.compressed_bytes:,} bytes "
        f"(dense {result.dense_bytes:,}, {100 * result.compressed_bytes / result.dense_bytes:.1f}%); targeted weights "
        f"{100 * result.target_compressed_bytes / result.target_dense_bytes:.1f}% of their dense size"
    )
