"""``lathe preprocess CFG [--debug]``: prepare and cache the data alone, before any training.

``--debug`` shows, for each example, the rendered text exactly (quoted, so spaces and newlines
show), the same text with trained and masked tokens distinct (colour on a terminal: green
trained, grey masked; ``[[trained]]`` markers otherwise), and the tokens beside it, one
``'piece'=id`` each, trained ones marked the same way.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from lathe.data.strategies import IGNORE
from lathe.errors import LatheError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from lathe.config import Config
    from lathe.plugins import Plugins

_GREEN, _GREY, _RESET = "\033[32m", "\033[90m", "\033[0m"


def render_example(row: dict[str, Any], tokenizer: PreTrainedTokenizerBase, colour: bool) -> str:
    """The row's text with trained runs marked (``[[...]]`` or green) and masked runs plain (or grey)."""
    pieces: list[str] = []
    run: list[int] = []
    trained_run = False

    def flush() -> None:
        if not run:
            return
        text = tokenizer.decode(run)
        if colour:
            pieces.append((_GREEN if trained_run else _GREY) + text + _RESET)
        else:
            pieces.append(f"[[{text}]]" if trained_run else text)

    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        trained = label != IGNORE
        if trained != trained_run:
            flush()
            run, trained_run = [], trained
        run.append(token)
    flush()
    return "".join(pieces)


def render_tokens(row: dict[str, Any], tokenizer: PreTrainedTokenizerBase, colour: bool) -> str:
    """Each token as ``'piece'=id`` (``→label`` where its label is another value), trained ones green
    (or in ``[[ ]]``), in order."""
    pieces = []
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        item = f"{tokenizer.decode([token])!r}={token}"
        if label not in (IGNORE, token):  # a label that is not the token's own id (a class: process reward models)
            item += f"→{label}"
        if label != IGNORE:
            item = f"{_GREEN}{item}{_RESET}" if colour else f"[[{item}]]"
        pieces.append(item)
    return " ".join(pieces)


def preprocess(cfg: Config, plugins: Plugins, *, debug: bool, num_examples: int) -> None:
    from lathe.data.prepare import prepare_datasets
    from lathe.distributed import ranks
    from lathe.models.loading import model_config
    from lathe.models.tokenizer import load_tokenizer
    from lathe.models.vision import check_multimodal_keys, is_multimodal

    try:
        config = model_config(cfg, plugins)
    except LatheError:
        config = None  # a folder with only a tokenizer: text data needs no model config
    if config is not None:
        check_multimodal_keys(cfg, config)
    if config is not None and is_multimodal(config):
        _preprocess_vision(cfg, plugins, config, debug, num_examples)
        return
    ranks.start(cfg)  # launched: packs for the world size; rank 0 builds, the others wait
    tokenizer = load_tokenizer(cfg, plugins)
    with ranks.main_first():
        data = prepare_datasets(cfg, tokenizer, plugins)
    if not ranks.is_main():
        return
    click.echo(f"prepared data in {data.path}")
    for line in data.report.lines():
        click.echo(line)
    if debug:
        _show([data.train[i] for i in range(min(num_examples, len(data.train)))], tokenizer)


def _preprocess_vision(cfg: Config, plugins: Plugins, config: Any, debug: bool, num_examples: int) -> None:
    """Vision-language rows are never cached: check every image reference, and show the masks."""
    from lathe.data.strategies import strategy_registry
    from lathe.data.vision import setup_vision, tokenizer_config
    from lathe.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_config(cfg), plugins)
    vision = setup_vision(cfg, tokenizer, config, strategy_registry(plugins))
    click.echo("nothing to cache: vision-language rows are processed per batch (skip_prepare_dataset); "
               "every image reference was checked")
    if debug:
        rows = []
        for i in range(min(num_examples, len(vision.data.train))):
            batch = vision.collator([vision.data.train[i]])
            rows.append({"input_ids": batch["input_ids"][0].tolist(), "labels": batch["labels"][0].tolist()})
        _show(rows, tokenizer)


def _show(rows: list[dict[str, Any]], tokenizer: Any) -> None:
    colour = sys.stdout.isatty()
    legend = f"{_GREEN}trained{_RESET} / {_GREY}masked{_RESET}" if colour else "[[trained]] / masked"
    click.echo(f"--- {len(rows)} examples ({legend}) ---")
    for i, row in enumerate(rows):
        click.echo(f"[{i}] {len(row['input_ids'])} tokens")
        click.echo(f"rendered: {tokenizer.decode(row['input_ids'])!r}")
        click.echo(f"masks:    {render_example(row, tokenizer, colour)}")
        click.echo(f"tokens:   {render_tokens(row, tokenizer, colour)}")
