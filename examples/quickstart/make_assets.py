"""Build the quickstart's tiny model, tokenizer and data, offline and deterministically.

The task: reverse a list of 2–5 words ("reverse cat sun tree :" → "tree sun cat").
The model is a 4-layer Llama-shaped transformer with random weights; the tokenizer is
word-level over the task's vocabulary. Held-out lists never appear in the training set.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

WORDS = ["cat", "dog", "sun", "moon", "tree", "river", "stone", "bird", "fish", "star",
         "rain", "snow", "fire", "wind", "leaf", "road"]
SPECIAL = ["<pad>", "<eos>", "<unk>"]
HERE = Path(__file__).resolve().parent


def make_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([*SPECIAL, "reverse", ":", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tok.save_pretrained(path)


def make_model(path: Path, vocab_size: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                         tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)


def make_data(folder: Path, n_train: int = 6000, n_test: int = 50) -> None:
    rng = random.Random(0)
    seen: set[tuple[str, ...]] = set()
    rows = []
    while len(rows) < n_train + n_test:
        words = tuple(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        if words in seen and len(rows) >= n_train:
            continue  # held-out lists are new
        seen.add(words)
        rows.append({"words": " ".join(words), "reversed": " ".join(reversed(words))})
    train, test = rows[:n_train], [r for r in rows[n_train:] if tuple(r["words"].split()) not in
                                  {tuple(t["words"].split()) for t in rows[:n_train]}]
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.jsonl", train), ("heldout.jsonl", test)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in part))


def main() -> None:
    model_dir = HERE / "model"
    if not (model_dir / "config.json").exists():
        make_tokenizer(model_dir)
        from transformers import AutoTokenizer

        make_model(model_dir, len(AutoTokenizer.from_pretrained(model_dir)))
        print(f"wrote a random-init model and tokenizer to {model_dir}", file=sys.stderr)
    if not (HERE / "data" / "train.jsonl").exists():
        make_data(HERE / "data")
        print(f"wrote the reversal task to {HERE / 'data'}", file=sys.stderr)


if __name__ == "__main__":
    main()
