"""Completion tables: a bounded buffer of a preference/RL trainer's completions, logged as a
SwanLab table every N steps and at the end of training."""

from __future__ import annotations

from collections import deque
from typing import Any

from transformers import TrainerCallback

TABLE = "rlhf_completions"


class CompletionBuffer:
    """The last ``maxlen`` completions (older ones are dropped: memory stays bounded)."""

    def __init__(self, maxlen: int) -> None:
        self.rows: deque[dict[str, Any]] = deque(maxlen=maxlen)

    def add(self, step: int, row: dict[str, Any]) -> None:
        self.rows.append({"step": step, **row})

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Headers (``step`` first, then every column in order of first appearance) and rows."""
        headers: list[str] = []
        for row in self.rows:
            headers += [k for k in row if k not in headers]
        return headers, [[_cell(row.get(h, "")) for h in headers] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | str):
        return value
    item = getattr(value, "item", None)  # a 0-d tensor
    return item() if callable(item) else str(value)


class CompletionTableCallback(TrainerCallback):
    """Logs the buffer as the ``rlhf_completions`` table every ``interval`` steps and at the end."""

    def __init__(self, interval: int, max_buffer: int) -> None:
        self.interval = interval
        self.buffer = CompletionBuffer(max_buffer)
        self._last_flush = 0

    def flush(self, step: int) -> None:
        import swanlab

        if len(self.buffer) and swanlab.has_run():
            headers, rows = self.buffer.table()
            swanlab.log({TABLE: swanlab.echarts.Table().add(headers, rows)}, step=step)
        self.buffer.rows.clear()
        self._last_flush = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and state.global_step - self._last_flush >= self.interval:
            self.flush(state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and len(self.buffer):
            self.flush(state.global_step)
