"""Which model is evaluated, and what happens to the results.

After training (rank 0): the trained model in memory, which is what was just saved; an
adapter is merged into its base for the evaluation and unmerged after (a quantized base
is evaluated with the adapter attached, since merging into 4/8-bit weights is lossy).
With ``lathe lm-eval``: ``lm_eval_model`` when set, else the trained model in
``output_dir``, else ``hub_model_id`` (lm-eval downloads it).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lathe.errors import LatheError
from lathe_lm_eval.evaluate import evaluate, metrics, report, write_results


@contextlib.contextmanager
def merged_adapter(cfg: Any, model: Any) -> Iterator[Any]:
    """``model`` with its LoRA adapter merged in place for the duration (then unmerged)."""
    merge = getattr(model, "merge_adapter", None)
    if merge is None or cfg.load_in_4bit or cfg.load_in_8bit:
        yield model
        return
    merge()
    try:
        yield model
    finally:
        model.unmerge_adapter()


def _is_main_process(trainer: Any) -> bool:
    if trainer is not None:
        return bool(trainer.is_world_process_zero())
    return int(os.environ.get("RANK", "0")) == 0


def evaluate_after_training(cfg: Any, model: Any, trainer: Any = None) -> dict[str, Any]:
    if not _is_main_process(trainer):
        return {}
    if cfg.lm_eval_model:
        results = evaluate(cfg, cfg.lm_eval_model)
        name = cfg.lm_eval_model
    else:
        tokenizer = getattr(trainer, "processing_class", None) if trainer is not None else None
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(cfg.output_dir)
        was_training = model.training
        model.eval()
        try:
            with merged_adapter(cfg, model):
                results = evaluate(cfg, model, tokenizer)
        finally:
            model.train(was_training)
        name = str(cfg.output_dir)
    path = write_results(results, cfg.output_dir, name)
    report(results, path)
    if trainer is not None:
        trainer.log(metrics(results))  # reaches every tracker report_to names
    return results


def evaluate_saved(cfg: Any) -> dict[str, Any]:
    """``lathe lm-eval``: evaluate the model the config points at."""
    out = Path(cfg.output_dir)
    if cfg.lm_eval_model:
        results, name = evaluate(cfg, cfg.lm_eval_model), cfg.lm_eval_model
    elif (out / "adapter_config.json").is_file():
        results, name = evaluate(cfg, *_merged_from_disk(cfg, out)), str(out)
    elif (out / "config.json").is_file():
        results, name = evaluate(cfg, str(out)), str(out)
    elif cfg.hub_model_id:
        results, name = evaluate(cfg, cfg.hub_model_id), cfg.hub_model_id
    else:
        raise LatheError(
            f"lm-eval: output_dir {out} holds no trained model; train first, or set lm_eval_model (or hub_model_id)"
        )
    path = write_results(results, cfg.output_dir, name)
    report(results, path)
    return results


def _merged_from_disk(cfg: Any, out: Path) -> tuple[Any, Any]:
    """The base model with the adapter in ``out`` merged (in memory), and the saved tokenizer."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    base = AutoModelForCausalLM.from_pretrained(
        cfg.base_model, dtype="auto", trust_remote_code=cfg.trust_remote_code, revision=cfg.revision_of_model
    )
    if base.get_input_embeddings().weight.shape[0] < len(tokenizer):
        base.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model = PeftModel.from_pretrained(base, str(out)).merge_and_unload()
    model.eval()
    print(f"lathe: lm_eval: evaluating {cfg.base_model} with the adapter in {out} merged", file=sys.stderr)
    return model, tokenizer
