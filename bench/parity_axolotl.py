"""Same dataset config, same training rows? lathe against Axolotl 0.19.0, row by row.

Axolotl is installed in its own virtual environment (torch first, then Axolotl without its
GPU-heavy dependencies, then only what its prompt strategies and data modules import), with
lathe added to it; the script then runs itself there. Each setup prepares the same rows with
the same tiny tokenizer (lathe.testing) through Axolotl's own code path (its dataset
wrapper, length filter, or pretraining encoders) and through lathe's, and prints the share
of rows whose ``input_ids`` are identical and whose ``labels`` are identical.

Setups that differ on purpose are run with the key that restores Axolotl's behaviour
(the "restore" column) and, in a second line, without it.

    python bench/parity_axolotl.py                 # the table (nox -s bench)
    python bench/parity_axolotl.py --write-golden  # rewrite the CI matrix's golden rows

The venv lives under $LATHE_BENCH_CACHE (default ~/.cache/lathe-bench); LATHE_AXOLOTL_WHEEL
may name a local Axolotl wheel instead of ``axolotl==0.19.0`` from the index, and
LATHE_BENCH_TOKENIZERS another tokenizers than Axolotl's pin (0.23.1). The golden rows are
written with the tokenizers CI installs (0.23.3): 0.23.1 returns only the first overflow
window of a long text, so under Axolotl's pin its packed pretraining keeps just the first two
windows of each document (lathe cuts the windows itself and keeps them all).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "packages/lathe/tests/data/parity/axolotl_rows.json"
AXOLOTL = "axolotl==0.19.0"
# What Axolotl's prompt strategies, dataset wrappers and pretraining encoders import (its full
# dependency set pulls CUDA-only packages that do not install here); versions are its pins.
AXOLOTL_IMPORTS = [
    "transformers==5.16.1", "tokenizers==0.23.1", "datasets==4.8.4", "pydantic==2.12.5", "accelerate==1.13.0",
    "peft==0.20.0", "posthog==6.7.11", "addict", "colorama", "jinja2", "numba", "pluggy", "pyyaml", "click",
]
NO_DEPS = ["trl==1.9.0"]  # imported by axolotl.utils.collators; its own dependencies are not needed
SEQ = 256


def _venv() -> Path:
    tokenizers = os.environ.get("LATHE_BENCH_TOKENIZERS")
    name = "axolotl-0.19.0" + (f"-tokenizers-{tokenizers}" if tokenizers else "")
    home = Path(os.environ.get("LATHE_BENCH_CACHE", Path.home() / ".cache" / "lathe-bench")) / name
    python = home / "bin" / "python"
    if (home / ".complete").exists():
        return python
    venv.create(home, with_pip=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    wheel = os.environ.get("LATHE_AXOLOTL_WHEEL", AXOLOTL)
    imports = [f"tokenizers=={tokenizers}" if tokenizers and p.startswith("tokenizers==") else p
               for p in AXOLOTL_IMPORTS]
    for step in (["torch==2.13.0"], ["--no-deps", wheel], imports, ["--no-deps", *NO_DEPS],
                 ["--no-deps", "-e", str(ROOT / "packages/lathe")]):
        print("installing:", " ".join(step), flush=True)
        subprocess.run([*pip, *step], check=True)
    (home / ".complete").write_text("ok")
    return python


# --- the cases ------------------------------------------------------------------------------

ROW = {"instruction": "Repeat the words", "input": "red cat", "output": "cat red"}
CONVO = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Uppercase: red cat"},
         {"role": "assistant", "content": "RED CAT"}, {"role": "user", "content": "Uppercase: blue dog"},
         {"role": "assistant", "content": "BLUE DOG"}]
SEGMENTS = [{"text": "Q: red?", "label": False}, {"text": " A: blue.", "label": True},
            {"text": " Q: cat?", "label": False}, {"text": " A: dog.", "label": True}]
TEXTS = [{"text": "red cat blue dog green tree river stone cloud apple bread water light night small large "
                  "quick slow warm cold seven three north south open close red cat blue dog green tree river"},
         {"text": "seven cold stones"}, {"text": "tree river stone cloud apple."}]
BOS = {"bos_token": "<|endoftext|>"}
EOT = {"eos_token": "<|endoftext|>"}  # <|im_end|> ends turns but is not EOS
USER_DEFINED = {"field_instruction": "q", "field_input": "ctx", "field_output": "a",
                "format": "[INST] {instruction} | {input} [/INST]", "no_input_format": "[INST] {instruction} [/INST]"}


def case(id: str, entry: dict[str, Any], rows: list[dict[str, Any]], tokenizer: dict[str, Any] | None = None,
         restore: dict[str, Any] | None = None, **cfg: Any) -> dict[str, Any]:
    out = {"id": id, "tokenizer": tokenizer or {}, "cfg": {"sequence_len": SEQ, **cfg}, "entry": entry, "rows": rows}
    if restore is not None:
        out["restore"] = restore
    return out


def cases() -> list[dict[str, Any]]:
    alpaca_rows = [ROW, {**ROW, "input": ""}, {**ROW, "output": "cat red<|im_end|>"}]
    sys_rows = [{**ROW, "system": "Be brief."}, {**ROW, "input": "", "system": ""}]
    out = [
        case("alpaca", {"type": "alpaca"}, alpaca_rows),
        case("alpaca/train_on_inputs", {"type": "alpaca"}, alpaca_rows, train_on_inputs=True),
        case("alpaca/bos", {"type": "alpaca"}, alpaca_rows, BOS),
        case("alpaca/system column ignored", {"type": "alpaca"}, sys_rows),
        case("alpaca/long prompt dropped", {"type": "alpaca"}, [{**ROW, "input": "red cat " * 150}, ROW]),
    ]
    for style in ("instruct", "chat", "chatml", "phi"):
        out.append(case(f"alpaca:{style}", {"type": f"alpaca:{style}"}, alpaca_rows))
    for kind in ("alpaca_w_system.load_instruct", "alpaca_w_system.load_chat", "alpaca_w_system"):
        out.append(case(kind, {"type": kind}, sys_rows))
    orca = [{"question": "Uppercase: red", "response": "RED", "system_prompt": "Be brief."},
            {"question": "Uppercase: cat", "response": "CAT", "system_prompt": ""}]
    for kind in ("alpaca_w_system.load_open_orca", "alpaca_w_system.load_open_orca_chatml", "orcamini"):
        out.append(case(kind, {"type": kind}, orca))
    out += [
        case("alpaca_chat", {"type": "alpaca_chat"}, alpaca_rows),
        case("alpaca_chat.load_qa", {"type": "alpaca_chat.load_qa"}, [{"question": "Uppercase: red", "answer": "RED"}]),
        case("alpaca_chat.load_concise", {"type": "alpaca_chat.load_concise"}, alpaca_rows),
        case("alpaca_instruct.load_no_prompt", {"type": "alpaca_instruct.load_no_prompt"}, alpaca_rows),
        case("jeopardy", {"type": "jeopardy"}, [{"question": "It flows", "category": "nature", "answer": "a river"}]),
        case("oasst", {"type": "oasst"}, [{"INSTRUCTION": "Uppercase: red", "RESPONSE": "RED"}]),
        case("gpteacher:chat", {"type": "gpteacher:chat"}, [{"instruction": "Say", "input": "red", "response": "red"}]),
        case("summarizetldr", {"type": "summarizetldr"}, [{"article": "red cat blue dog", "summary": "cats"}]),
        case("explainchoice", {"type": "explainchoice"},
             [{"question": "Colour?", "choices": ["red", "blue"], "solution": "red"}]),
        case("concisechoice", {"type": "concisechoice"},
             [{"question": "Colour?", "choices": ["red", "blue"], "explanation": "blue"}]),
        case("user_defined", {"type": USER_DEFINED}, [{"q": "open", "ctx": "door", "a": "close"},
                                                     {"q": "open", "ctx": "", "a": "close", "system": "S."}]),
        case("user_defined/defaults", {"type": {"system_prompt": "Be brief."}}, alpaca_rows),
        case("completion", {"type": "completion"}, TEXTS),
        case("completion/bos", {"type": "completion"}, TEXTS, BOS),
        case("completion/long texts split", {"type": "completion"}, TEXTS, sequence_len=16),
        case("input_output", {"type": "input_output"}, [{"segments": SEGMENTS}]),
        case("input_output/train_on_inputs", {"type": "input_output"}, [{"segments": SEGMENTS}], train_on_inputs=True),
        case("input_output/bos", {"type": "input_output"}, [{"segments": SEGMENTS}], BOS),
    ]
    chat = {"type": "chat_template"}
    convo = [{"messages": CONVO}, {"messages": CONVO[1:]}]
    out += [
        case("chat_template", chat, convo),
        case("chat_template/train_on_inputs", chat, convo, train_on_inputs=True),
        case("chat_template/roles_to_train user+assistant", {**chat, "roles_to_train": ["user", "assistant"]}, convo),
        *[case(f"chat_template/train_on_eos {m}", {**chat, "train_on_eos": m}, convo) for m in ("all", "last", "none")],
        case("chat_template/system column", chat, [{"messages": CONVO[1:3], "system": "Be brief."}, {"messages": CONVO}]),
        case("chat_template/drop_system_message", {**chat, "drop_system_message": True}, convo),
        case("chat_template/roles mapping", {**chat, "field_messages": "conversations",
                                             "message_property_mappings": {"role": "from", "content": "value"},
                                             "roles": {"user": ["human"], "assistant": ["gpt"]}},
             [{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "HELLO"}]}]),
        case("chat_template/bos template", {**chat, "chat_template": "jinja",
                                            "chat_template_jinja": "{{ bos_token }}" + CHATML_JINJA}, convo, BOS),
        case("chat_template/eot tokenizer, eot_tokens set", chat, convo, EOT, eot_tokens=["<|im_end|>"]),
        case("chat_template/eot tokenizer, train_on_eot last", {**chat, "train_on_eot": "last"}, convo, EOT,
             eot_tokens=["<|im_end|>"]),
        case("chat_template/eot tokenizer, eot and eos", {**chat, "train_on_eos": "all", "train_on_eot": "all"}, convo,
             EOT, eot_tokens=["<|im_end|>", "<|endoftext|>"]),
        # deliberate differences: lathe's default, and the key that gives Axolotl's rows
        case("chat_template/eot tokenizer, default eot_tokens", chat, convo, EOT, restore={"eot_tokens": ["<|endoftext|>"]}),
        case("chat_template/default_system_message", chat, [{"messages": CONVO[1:3]}],
             default_system_message="Be kind.", restore={"default_system_message": None}),
        case("pretrain/packed", {"type": "pretrain"}, TEXTS, sequence_len=16, sample_packing=True),
        case("pretrain/packed bos, pretraining_dataset", {"type": "pretrain"}, TEXTS, BOS, sequence_len=16,
             sample_packing=True, pretraining_dataset=[{"path": "unused", "text_column": "text"}]),
        case("pretrain/unpacked", {"type": "pretrain"}, TEXTS, sequence_len=16),
        case("pretrain/unpacked concatenated", {"type": "pretrain"}, TEXTS, sequence_len=16,
             pretraining_sample_concatenation=True),
    ]
    return out


CHATML_JINJA = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# --- running each tool ----------------------------------------------------------------------


def lathe_rows(c: dict[str, Any], restore: bool, tokenizer: Any) -> list[dict[str, list[int]]]:
    from lathe.testing import prepared_rows

    raw = {**c["cfg"], **(c.get("restore", {}) if restore else {})}
    raw = {k: v for k, v in raw.items() if v is not None}
    if "pretraining_dataset" not in raw:
        raw["datasets"] = [{"path": "unused.jsonl", **c["entry"]}]
    return prepared_rows(raw, tokenizer, c["rows"])


def axolotl_rows(c: dict[str, Any], tokenizer: Any) -> list[dict[str, list[int]]]:
    import datasets
    from axolotl.utils.data.utils import handle_long_seq_in_dataset
    from axolotl.utils.data.wrappers import get_dataset_wrapper
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault({"train_on_inputs": False, "dataset_num_proc": 1, **c["cfg"]})
    entry = dict(c["entry"])
    texts = [r["text"] for r in c["rows"]] if entry["type"] == "pretrain" else []
    if entry["type"] == "pretrain" and not cfg.sample_packing:
        from axolotl.utils.data.streaming import encode_streaming

        out = encode_streaming({"text": texts}, tokenizer, cfg.sequence_len, "text",
                               concatenate=cfg.pretraining_sample_concatenation is True)
        return [{"input_ids": i, "labels": lab} for i, lab in zip(out["input_ids"], out["labels"], strict=True)]
    if entry["type"] == "pretrain" and not cfg.pretraining_dataset:
        cfg["pretraining_dataset"] = [DictDefault({"text_column": "text"})]
    if entry["type"] == "chat_template" and not entry.get("chat_template"):
        entry["chat_template"] = "tokenizer_default"  # Axolotl's dataset validator sets this
    kind = entry["type"]
    if isinstance(kind, dict):
        entry["type"] = DictDefault(kind)
        base, style = None, None
    else:
        base, _, style = kind.partition(":")
    ds = datasets.Dataset.from_list(c["rows"])
    wrapped, _ = get_dataset_wrapper(DictDefault({"path": "unused", **entry}), tokenizer, cfg, base, ds, style or None)
    wrapped = handle_long_seq_in_dataset(wrapped, cfg.sequence_len, cfg)
    rows = [{"input_ids": list(r["input_ids"]), "labels": list(r.get("labels") or r["input_ids"])} for r in wrapped]
    # Axolotl drops rows without a trained token only when packing; lathe always (they train nothing)
    return [r for r in rows if any(x != -100 for x in r["labels"])]


def readable(row: dict[str, list[int]], tokenizer: Any) -> str:
    """The row's text with trained runs in [[...]], for checking golden rows by eye."""
    out, run, trained = [], [], False
    for token, label in [*zip(row["input_ids"], row["labels"], strict=True), (None, None)]:
        now = label is not None and label != -100
        if (now != trained or token is None) and run:
            text = tokenizer.decode(run)
            out.append(f"[[{text}]]" if trained else text)
            run = []
        trained = now
        if token is not None:
            run.append(token)
    return "".join(out)


def write_golden() -> None:
    from lathe.testing import tiny_tokenizer

    out = []
    for c in cases():
        tok = tiny_tokenizer(**c["tokenizer"])
        rows = axolotl_rows(c, tok)
        out.append({**c, "expected": [{**r, "text": readable(r, tok)} for r in rows]})
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(out, indent=1)  # then each list of token ids on one line
    text = re.sub(r"\[([-\d,\s]+)\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    GOLDEN.write_text(text + "\n")
    print(f"wrote {len(out)} cases to {GOLDEN}")


# --- the table ------------------------------------------------------------------------------


def setups() -> list[dict[str, Any]]:
    """Larger generated sets per strategy and option (lathe.testing's deterministic rows)."""
    from lathe.testing import alpaca_rows, chat_rows, text_rows

    alpaca = alpaca_rows(300)
    with_system = [{**r, "system": "Be brief." if i % 2 else ""} for i, r in enumerate(alpaca)]
    chats = chat_rows(200, turns=3)
    texts = text_rows(200) + [{"text": " ".join(r["text"] for r in text_rows(6, seed=i))} for i in range(40)]
    segments = [{"segments": [{"text": r["instruction"] + " ", "label": False}, {"text": r["output"], "label": True}]}
                for r in alpaca]
    chat = {"type": "chat_template"}
    return [
        case("alpaca", {"type": "alpaca"}, alpaca),
        case("alpaca train_on_inputs", {"type": "alpaca"}, alpaca, train_on_inputs=True),
        case("alpaca bos tokenizer", {"type": "alpaca"}, alpaca, BOS),
        case("alpaca + system column", {"type": "alpaca"}, with_system),
        case("alpaca:chatml", {"type": "alpaca:chatml"}, alpaca),
        case("alpaca_w_system.load_instruct", {"type": "alpaca_w_system.load_instruct"}, with_system),
        case("completion (some > sequence_len)", {"type": "completion"}, texts, sequence_len=128),
        case("completion bos tokenizer", {"type": "completion"}, texts, BOS, sequence_len=128),
        case("input_output", {"type": "input_output"}, segments),
        case("input_output train_on_inputs", {"type": "input_output"}, segments, train_on_inputs=True),
        case("input_output bos tokenizer", {"type": "input_output"}, segments, BOS),
        case("chat_template", chat, chats, sequence_len=256),
        case("chat_template train_on_inputs", chat, chats, sequence_len=256, train_on_inputs=True),
        case("chat_template train_on_eos all", {**chat, "train_on_eos": "all"}, chats, sequence_len=256),
        case("chat_template eot tokenizer, eot_tokens set", chat, chats, EOT, sequence_len=256,
             eot_tokens=["<|im_end|>"]),
        case("chat_template eot tokenizer, default", chat, chats, EOT, sequence_len=256,
             restore={"eot_tokens": ["<|endoftext|>"]}),
        case("chat_template default_system_message", chat, chats, sequence_len=256, default_system_message="Be kind.",
             restore={"default_system_message": None}),
        case("pretrain packed", {"type": "pretrain"}, texts, sequence_len=128, sample_packing=True),
        case("pretrain unpacked", {"type": "pretrain"}, texts, sequence_len=128),
        case("pretrain unpacked concatenated", {"type": "pretrain"}, texts, sequence_len=128,
             pretraining_sample_concatenation=True),
    ]


def share(a: list[dict[str, list[int]]], b: list[dict[str, list[int]]], key: str) -> float:
    same = sum(x[key] == y[key] for x, y in zip(a, b, strict=False))
    return same / max(len(a), len(b), 1)


def table() -> None:
    import logging

    from lathe.testing import tiny_tokenizer

    logging.disable(logging.WARNING)
    print(f"{'setup':48} {'restore':34} {'rows ax/lathe':>13} {'ids':>7} {'labels':>7}")
    for s in setups():
        tok = tiny_tokenizer(**s["tokenizer"])
        ours = axolotl_rows(s, tok)
        variants = [(True, json.dumps(s["restore"])), (False, "(lathe default)")] if "restore" in s else [(False, "")]
        for restore, label in variants:
            lathe = lathe_rows(s, restore, tok)
            print(f"{s['id']:48} {label:34} {len(ours):>6}/{len(lathe):<6} {share(ours, lathe, 'input_ids'):>7.1%} "
                  f"{share(ours, lathe, 'labels'):>7.1%}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-golden", action="store_true", help="rewrite the CI matrix's golden rows")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inner:
        python = _venv()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
        sys.exit(subprocess.run([str(python), __file__, "--inner", *sys.argv[1:]], env=env).returncode)
    if args.write_golden:
        write_golden()
    else:
        table()


if __name__ == "__main__":
    main()
