"""Public helpers for lathe's tests and for plugin authors: everything offline and tiny.

- :func:`tiny_tokenizer` – a byte-level BPE tokenizer trained here, with a ChatML template.
- :func:`tiny_model` / :func:`write_tiny_model` – models shaped as every family the examples use.
- :func:`alpaca_rows`, :func:`chat_rows`, :func:`text_rows`, :func:`write_jsonl` – datasets.
- :func:`base_config` / :func:`run_training` – a short training from a config dict.
- :func:`prepared_rows` – a few rows tokenized and masked as ``lathe preprocess`` would.
"""

from lathe.testing.data import alpaca_rows, chat_rows, text_rows, write_jsonl
from lathe.testing.models import tiny_model, write_tiny_model
from lathe.testing.rows import prepared_rows
from lathe.testing.run import base_config, run_training
from lathe.testing.tokenizer import CHATML_TEMPLATE, tiny_tokenizer

__all__ = [
    "CHATML_TEMPLATE",
    "alpaca_rows",
    "base_config",
    "chat_rows",
    "prepared_rows",
    "run_training",
    "text_rows",
    "tiny_model",
    "tiny_tokenizer",
    "write_jsonl",
    "write_tiny_model",
]
