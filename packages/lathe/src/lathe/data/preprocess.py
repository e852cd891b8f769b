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
    """Each token as ``'piece'=id``, trained ones green (or in ``[[ ]]``), in order."""
    pieces = []
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        item = f"{tokenizer.decode([token])!r}={token}"
        if label != IGNORE:
            item = f"{_GREEN}{item}{_RESET}" if colour else f"[[{item}]]"
        pieces.append(item)
    return " ".join(pieces)


def preprocess(cfg: Config, plugins: Plugins, *, debug: bool, num_examples: int) -> None:
    from lathe.data.prepare import prepare_datasets
    from lathe.distributed import ranks
    from lathe.models.tokenizer import load_tokenizer

    ranks.start(cfg)  # launched: packs for the world size; rank 0 builds, the others wait
    tokenizer = load_tokenizer(cfg, plugins)
    with ranks.main_first():
        data = prepare_datasets(cfg, tokenizer, plugins)
    if not ranks.is_main():
        return
    click.echo(f"prepared data in {data.path}")
    for line in data.report.lines():
        click.echo(line)
    if not debug:
        return
    colour = sys.stdout.isatty()
    legend = f"{_GREEN}trained{_RESET} / {_GREY}masked{_RESET}" if colour else "[[trained]] / masked"
    click.echo(f"--- {min(num_examples, len(data.train))} examples ({legend}) ---")
    for i in range(min(num_examples, len(data.train))):
        row = data.train[i]
        click.echo(f"[{i}] {len(row['input_ids'])} tokens")
        click.echo(f"rendered: {tokenizer.decode(row['input_ids'])!r}")
        click.echo(f"masks:    {render_example(row, tokenizer, colour)}")
        click.echo(f"tokens:   {render_tokens(row, tokenizer, colour)}")
