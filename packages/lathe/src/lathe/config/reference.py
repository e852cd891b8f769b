"""Render the config reference (docs/config-reference.md) from the schema itself.

    python -m lathe.config.reference > docs/config-reference.md
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lathe.config.adapter import AdapterSection
from lathe.config.data import DataSection, DatasetConfig
from lathe.config.distributed import DistributedSection, FsdpConfig
from lathe.config.engines import EnginesSection
from lathe.config.fields import DATA_MARK
from lathe.config.memory import MemorySection
from lathe.config.model import ModelSection
from lathe.config.tracking import TrackingSection
from lathe.config.training import TrainingSection

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("Model, tokenizer, precision, attention", ModelSection),
    ("Datasets, prompt formats, length, packing", DataSection),
    ("Each entry of `datasets` / `test_datasets`", DatasetConfig),
    ("Adapters (LoRA, QLoRA)", AdapterSection),
    ("Training, evaluation, checkpoints, outputs", TrainingSection),
    ("Memory and long context", MemorySection),
    ("Tracking, hub, plugins", TrackingSection),
    ("Several processes: DDP, FSDP, N-D parallelism (docs/distributed.md)", DistributedSection),
    ("`fsdp_config` (each key also with the `fsdp_` prefix)", FsdpConfig),
    ("DeepSpeed and Ray (docs/distributed.md)", EnginesSection),
]


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    return text.replace("typing.", "").replace("lathe.config.data.", "").replace("lathe.config.distributed.", "").replace("NoneType", "None")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"
    if field.is_required():
        return "**required**"
    return f"`{field.default!r}`"


def render_reference() -> str:
    lines = [
        "# Config reference",
        "",
        "Generated from the schema by `python -m lathe.config.reference`; do not edit by hand.",
        "Keys marked ◆ change preprocessing and are part of the prepared-data cache key.",
        "Plugins' keys are documented on each plugin's page; `lathe config schema` prints them all.",
    ]
    for title, model in SECTIONS:
        lines += ["", f"## {title}", "", "| key | type | default | description |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            mark = " ◆" if extra.get(DATA_MARK) else ""
            desc = (field.description or "").replace("|", "\\|")
            type_name = _type_name(field.annotation).replace("|", "\\|")
            lines.append(f"| `{name}`{mark} | {type_name} | {_default(field)} | {desc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
