"""Accuracy of the trained quickstart model on the held-out word lists (exact match)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from lathe.config import load_config
from lathe.infer import run_inference

HERE = Path(__file__).resolve().parent


def main() -> None:
    import os

    os.chdir(HERE)
    cfg, plugins = load_config("config.yaml")
    rows = [json.loads(line) for line in (HERE / "data" / "heldout.jsonl").read_text().splitlines()]
    right = 0
    for row in rows:
        with contextlib.redirect_stdout(io.StringIO()):
            (answer,) = run_inference(cfg, plugins, prompt=row["words"], max_new_tokens=8)
        right += answer.strip() == row["reversed"]
    print(f"held-out accuracy: {right}/{len(rows)} = {right / len(rows):.0%}")


if __name__ == "__main__":
    main()
