"""The trainer callback that sends every log line's numbers to SwanLab (rank 0)."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class SwanLabMetrics(TrainerCallback):
    """Metrics at each log line, the trainer's geometry at the start; keeps the last values
    for the completion notification."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import swanlab

        if state.is_world_process_zero and swanlab.has_run():
            swanlab.config.update({
                "total_steps": int(state.max_steps),
                "num_train_epochs": float(args.num_train_epochs),
                "train_batch_size": int(args.train_batch_size),
                "gradient_accumulation_steps": int(args.gradient_accumulation_steps),
                "world_size": int(args.world_size),
            })

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        import swanlab

        if not state.is_world_process_zero or not logs:
            return
        numbers = {k: float(v) for k, v in logs.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        self.last.update(numbers)
        if numbers and swanlab.has_run():
            swanlab.log(numbers, step=state.global_step)
