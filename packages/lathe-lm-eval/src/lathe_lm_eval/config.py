"""The keys lathe-lm-eval adds (Axolotl's four, plus limit, few-shot and local tasks)."""

from __future__ import annotations

from pydantic import Field

from lathe.config import ConfigModel


class LmEvalConfig(ConfigModel):
    lm_eval_tasks: list[str] = Field(
        default_factory=list, description="lm-eval task, group or tag names (gsm8k, hellaswag, or your own)."
    )
    lm_eval_batch_size: int = Field(8, ge=1, description="Batch size of the evaluation.")
    lm_eval_post_train: bool = Field(True, description="Evaluate right after training (rank 0).")
    lm_eval_model: str | None = Field(
        None, description="Evaluate this model (path or hub name) instead of the trained output."
    )
    lm_eval_limit: int | float | None = Field(
        None, gt=0, description="Documents per task: a count (>= 1) or a fraction of each task (< 1)."
    )
    lm_eval_num_fewshot: int | None = Field(None, ge=0, description="Few-shot examples per prompt (task default if unset).")
    lm_eval_include_path: str | None = Field(None, description="A folder of your own task YAMLs.")
