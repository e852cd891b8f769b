"""Write Axolotl's config key list (facts only) from an unpacked Axolotl wheel, statically.

    python scripts/axolotl_keys.py AXOLOTL_SRC > packages/lathe/src/lathe/config/compat/axolotl_keys.json

AXOLOTL_SRC is an unpacked wheel: ``pip download axolotl==0.19.0 --no-deps`` and unzip it
(the nox test sessions do this and check the committed list against it).

Nothing of Axolotl is imported (that would need its dependencies): its pydantic schema modules,
integration ``args.py`` files, prompt strategies and chat templates are read with ``ast``. The
optimizer and scheduler names Axolotl hands to transformers are read the same way from the
installed transformers' source, with its version recorded.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ClassInfo:
    name: str
    module: str
    bases: list[str]
    fields: dict[str, dict[str, str]] = field(default_factory=dict)  # name → {"alias", "type"}
    assigns: dict[str, ast.expr] = field(default_factory=dict)  # enum members, constants


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ast.unparse(node)


def _alias(value: ast.expr | None) -> str | None:
    if isinstance(value, ast.Call):
        for kw in value.keywords:
            if kw.arg == "alias" and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
    return None


def _default(value: ast.expr | None) -> str:
    """The default as Python source ("None" when the field has none written)."""
    if isinstance(value, ast.Call) and _base_name(value.func) == "Field":
        for kw in value.keywords:
            if kw.arg == "default":
                return ast.unparse(kw.value)
            if kw.arg == "default_factory":
                return ast.unparse(kw.value) + "()"
        return ast.unparse(value.args[0]) if value.args else "None"
    return "None" if value is None else ast.unparse(value)


def read_classes(root: Path, module: str) -> dict[str, ClassInfo]:
    """Every class of one module: bases, annotated fields (with aliases), plain assignments."""
    tree = ast.parse(root.read_text(encoding="utf-8"))
    out: dict[str, ClassInfo] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        info = ClassInfo(node.name, module, [_base_name(b) for b in node.bases])
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                name = stmt.target.id
                if name.startswith("_") or name == "model_config":
                    continue
                info.fields[name] = {"type": ast.unparse(stmt.annotation), "default": _default(stmt.value)}
                alias = _alias(stmt.value)
                if alias:
                    info.fields[name]["alias"] = alias
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                info.assigns[stmt.targets[0].id] = stmt.value
        out[node.name] = info
    return out


def module_constants(path: Path) -> dict[str, ast.expr]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = node.value
    return out


class Schema:
    """The classes of a set of modules, with inherited fields resolved by class name."""

    def __init__(self, classes: dict[str, ClassInfo]):
        self.classes = classes

    def fields(self, name: str) -> dict[str, dict[str, str]]:
        info = self.classes[name]
        out: dict[str, dict[str, str]] = {}
        for base in info.bases:  # later bases lose to earlier ones, as in Python's MRO
            if base in self.classes:
                for key, value in self.fields(base).items():
                    out.setdefault(key, value)
        return {**out, **info.fields}

    def enum_values(self, name: str) -> list[str]:
        return sorted(
            str(v.value) for v in self.classes[name].assigns.values() if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )


def _collect(paths: list[Path], src: Path) -> dict[str, ClassInfo]:
    classes: dict[str, ClassInfo] = {}
    for path in paths:
        module = ".".join(path.relative_to(src).with_suffix("").parts)
        classes.update(read_classes(path, module))
    return classes


def _keys(fields: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Field name → facts; an alias is a key of its own (``populate_by_name``: both are accepted)."""
    out: dict[str, dict[str, str]] = {}
    for name, facts in sorted(fields.items()):
        out[name] = {"type": facts["type"], "default": facts["default"]}
        if "alias" in facts:
            out[facts["alias"]] = {"type": facts["type"], "default": facts["default"], "alias_of": name}
    return dict(sorted(out.items()))


def _nested(schema: Schema, fields: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Keys of a nested block (a field typed by another model of the schema)."""
    out = {}
    for name, facts in fields.items():
        for cls in schema.classes:
            if cls in facts["type"].replace("|", " ").replace("[", " ").replace("]", " ").split():
                if schema.fields(cls):
                    out[name] = sorted(schema.fields(cls))
                break
    return out


def integrations(pkg: Path, src: Path) -> dict[str, dict[str, object]]:
    """Each integration with a config model: the keys its model adds (and nested blocks' keys)."""
    out: dict[str, dict[str, object]] = {}
    for folder in sorted(p for p in (pkg / "integrations").iterdir() if p.is_dir()):
        files = sorted(folder.rglob("*.py"))
        target = None
        for path in files:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef) and node.name == "get_input_args":
                    for sub in ast.walk(node):
                        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value.startswith("axolotl."):
                            target = sub.value.rsplit(".", 1)[1]
        if target is None:
            continue
        schema = Schema(_collect(files, src))
        fields = schema.fields(target)
        out[folder.name] = {"model": target, "keys": _keys(fields), "nested": _nested(schema, fields)}
    return out


def _strings(node: ast.expr) -> list[str]:
    return sorted(str(n.value) for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def _string_dict(node: ast.expr) -> dict[str, str]:
    assert isinstance(node, ast.Dict)
    return {ast.literal_eval(k): ast.literal_eval(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}


def dataset_types(pkg: Path) -> dict[str, object]:
    """Dataset ``type`` names: prompt-strategy modules and their ``load_*`` variants, the built-in
    handlers with their ``:style`` variants, and the RL kinds' ``module.function`` names."""
    strategies = pkg / "prompt_strategies"
    sft: set[str] = set()
    for path in sorted(strategies.glob("*.py")):
        if path.stem.startswith("_") or path.stem in {"base", "jinja_template_analyzer"}:
            continue
        defs = [n.name for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.FunctionDef)]
        if "load" in defs:
            sft.add(path.stem)
        sft.update(f"{path.stem}.{d}" for d in defs if d.startswith("load_"))
    if (strategies / "messages" / "__init__.py").exists():
        sft.add("messages")
    handlers = _strings(module_constants(pkg / "utils" / "data" / "wrappers.py")["DATASET_HANDLERS"])
    styles = Schema(read_classes(pkg / "prompters.py", "prompters")).enum_values("PromptStyle")
    sft.update(handlers)
    sft.update(f"{h}:{s}" for h in handlers for s in styles)
    sft.update({"bradley_terry", "stepwise_supervised"})
    rl: dict[str, list[str]] = {}
    for kind in ("dpo", "kto", "orpo", "bradley_terry", "ebft"):
        names = []
        for path in sorted((strategies / kind).glob("*.py")):
            if path.stem.startswith("_"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names += [f"{path.stem}.{n.name}" for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
        rl[kind] = sorted(names)
    return {"sft": sorted(sft), "handlers": handlers, "prompt_styles": styles, "rl": rl}


def transformers_names() -> dict[str, object]:
    """transformers' optimizer and scheduler names (Axolotl hands non-custom names to it)."""
    from importlib import metadata

    spec = importlib.util.find_spec("transformers")
    assert spec and spec.origin, "transformers must be installed to read its optimizer names"
    root = Path(spec.origin).parent
    args = Schema(read_classes(root / "training_args.py", "training_args"))
    sched = Schema(read_classes(root / "trainer_utils.py", "trainer_utils"))
    return {
        "version": metadata.version("transformers"),
        "optimizer": args.enum_values("OptimizerNames"),
        "lr_scheduler": sched.enum_values("SchedulerType"),
    }


def build(src: Path) -> dict[str, object]:
    pkg = src / "axolotl"
    schemas = pkg / "utils" / "schemas"
    schema = Schema(_collect(sorted(schemas.glob("*.py")), src))
    core = schema.fields("AxolotlInputConfig")
    enums = module_constants(schemas / "enums.py")
    datasets_schema = Schema(_collect([schemas / "datasets.py"], src))
    dataset_models = ["SFTDataset", "DPODataset", "KTODataset", "StepwiseSupervisedDataset", "SyntheticDataset", "PretrainingDataset"]
    dataset_keys: dict[str, list[str]] = {}
    for model in dataset_models:
        for key in datasets_schema.fields(model):
            dataset_keys.setdefault(key, []).append(model)
    base = (pkg / "core" / "builders" / "base.py").read_text(encoding="utf-8")
    alternates = sorted(
        s for n in ast.walk(ast.parse(base)) if isinstance(n, ast.Compare) and "lr_scheduler" in ast.unparse(n.left)
        for s in _strings(n.comparators[0]) if isinstance(n.comparators[0], ast.List)
    )
    templates = sorted(p.stem for p in (pkg / "utils" / "chat_templates" / "templates").glob("*.jinja"))
    version = next(src.glob("axolotl-*.dist-info")).name.removeprefix("axolotl-").removesuffix(".dist-info")
    return {
        "axolotl_version": version,
        "generated_by": "scripts/axolotl_keys.py",
        "top_level": _keys(core),
        "nested": {k: v for k, v in _nested(schema, core).items() if not k.endswith(("datasets", "dataset"))},
        "integrations": integrations(pkg, src),
        "dataset_keys": dict(sorted(dataset_keys.items())),
        "user_defined_type_keys": sorted(datasets_schema.fields("UserDefinedPrompterType")),
        "enums": {
            "optimizer": {"axolotl": schema.enum_values("CustomSupportedOptimizers")},
            "lr_scheduler": {"axolotl": alternates},
            "rl": schema.enum_values("RLType"),
            "attn_implementation": _strings(enums["CANONICAL_ATTN_IMPLS"]),
            "attn_switches": _string_dict(enums["LEGACY_ATTN_FLAG_TO_IMPL"]),
            "chat_template": schema.enum_values("ChatTemplate"),
            "chat_template_files": templates,
            "dataset_type": dataset_types(pkg),
        },
        "transformers": transformers_names(),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/axolotl_keys.py AXOLOTL_SRC (an unpacked axolotl wheel)")
    source = Path(sys.argv[1])
    print(json.dumps(build(source), indent=1, sort_keys=False))
