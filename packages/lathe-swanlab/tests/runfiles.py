"""Reading a finished SwanLab run back from its local files (the tests' only view of a run)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class LocalRun:
    dir: Path
    start: Any = None
    finish: Any = None
    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    media: dict[str, list[tuple[int, Path]]] = field(default_factory=dict)
    saved: list[str] = field(default_factory=list)
    terminal: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        raw = yaml.safe_load((self.dir / "files" / "config.yaml").read_text()) or {}
        return {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in raw.items()}

    def text(self, key: str) -> str:
        return self.media[key][-1][1].read_text()

    def tables(self, key: str) -> list[tuple[int, list[dict[str, Any]]]]:
        return [(step, json.loads(path.read_text())["rowData"]) for step, path in self.media.get(key, [])]

    def everything(self) -> str:
        """All bytes SwanLab wrote for the run, decoded loosely (to look for leaked secrets)."""
        return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in self.dir.rglob("*") if p.is_file())


def read_runs(log_dir: Path) -> list[LocalRun]:
    from swanlab.proto.swanlab.record.v1.record_pb2 import Record
    from swanlab.sdk.internal.core_python.store import DataStoreReader

    runs = []
    for run_dir in sorted(log_dir.glob("run-*")):
        run = LocalRun(run_dir)
        reader = DataStoreReader()
        reader.open(next(run_dir.glob("run-*.swanlab")))
        for raw in reader:
            rec = Record()
            rec.ParseFromString(raw)
            kind = rec.WhichOneof("record_type")
            if kind == "start":
                run.start = rec.start
            elif kind == "finish":
                run.finish = rec.finish
            elif kind == "scalar":
                run.scalars.setdefault(rec.scalar.key, []).append((rec.scalar.step, rec.scalar.value.number))
            elif kind == "media":
                for item in rec.media.value.items:
                    folder = "text" if rec.media.type == 3 else "echarts"
                    found = next((run_dir / "media").rglob(item.filename), run_dir / "media" / folder / item.filename)
                    run.media.setdefault(rec.media.key, []).append((rec.media.step, found))
            elif kind == "save":
                run.saved.append(rec.save.name)
            elif kind == "log":
                run.terminal.append(rec.log.line)
        reader.close()
        runs.append(run)
    return runs


RUN_STATE_FINISHED, RUN_STATE_CRASHED, RUN_STATE_ABORTED = 1, 2, 3  # swanlab.run.v1.RunState
