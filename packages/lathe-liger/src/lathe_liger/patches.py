"""Swapping model code for Liger's kernels, per model type, and undoing it after the run.

Where liger has ``apply_liger_kernel_to_<type>`` (its ``MODEL_TYPE_TO_APPLY_LIGER_FN``
table) lathe calls it with exactly the enabled kernels, and never with its loss switches:
the losses go through lathe's ``lathe_hidden_states_loss`` hook instead (liger's
``cross_entropy`` switch would replace ``torch.nn.functional.cross_entropy`` for the whole
process). For the types Axolotl serves beyond liger's table, lathe swaps the modules
itself (:data:`OWN_SWAPS`). Any other type with a kernel key set is an error naming the key.

The patch is applied before the model is built (liger's class-level path: the model is
constructed from the swapped classes) and recorded as a :class:`PatchSet`: every attribute
of every loaded ``transformers.models`` module, and every function of their classes, that
the apply changed. :meth:`PatchSet.undo` puts the originals back.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import Any

from lathe.errors import LatheError

# key → the parameter of liger's apply functions it drives (GLU is swiglu or geglu by family)
PARAMS = {"liger_rope": ("rope",), "liger_rms_norm": ("rms_norm",), "liger_layer_norm": ("layer_norm",),
          "liger_glu_activation": ("swiglu", "geglu")}
LOSS_PARAMS = ("cross_entropy", "fused_linear_cross_entropy")

# Types Axolotl hand-patches that liger's table lacks: key → names in modeling_<type> to replace.
OWN_SWAPS: dict[str, dict[str, dict[str, str]]] = {
    "granitemoe": {"liger_rms_norm": {"GraniteMoeRMSNorm": "rms_norm"}, "liger_rope": {"apply_rotary_pos_emb": "rope"}},
    "jamba": {"liger_rms_norm": {"JambaRMSNorm": "rms_norm"}, "liger_rope": {"apply_rotary_pos_emb": "rope"},
              "liger_glu_activation": {"JambaMLP": "swiglu"}},
}


def _replacements() -> dict[str, Any]:
    from liger_kernel.transformers.rms_norm import LigerRMSNorm
    from liger_kernel.transformers.rope import liger_rotary_pos_emb
    from liger_kernel.transformers.swiglu import LigerSwiGLUMLP

    return {"rms_norm": LigerRMSNorm, "rope": liger_rotary_pos_emb, "swiglu": LigerSwiGLUMLP}


Snapshot = dict[tuple[str, str | None, str], Any]


def _snapshot() -> Snapshot:
    """(module, class or None, attribute) → object, over the loaded transformers model modules."""
    seen: Snapshot = {}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("transformers.models."):
            continue
        for attr, value in list(vars(module).items()):
            seen[(name, None, attr)] = value
            if inspect.isclass(value) and value.__module__ == name:
                for cattr, cvalue in list(vars(value).items()):
                    if callable(cvalue):
                        seen[(name, attr, cattr)] = cvalue
    return seen


@dataclass
class PatchSet:
    """What one run swapped: (module, class or None, attribute) → the original object."""

    originals: Snapshot = field(default_factory=dict)

    def swapped(self) -> list[str]:
        """Dotted names of everything swapped, e.g. ``transformers.models.llama.modeling_llama.LlamaMLP``."""
        return sorted(".".join(p for p in key if p) for key in self.originals)

    def undo(self) -> None:
        for (module_name, cls_name, attr), value in self.originals.items():
            target: Any = sys.modules[module_name]
            if cls_name is not None:
                target = vars(target)[cls_name]
            setattr(target, attr, value)
        self.originals.clear()


def _record(before: Snapshot, patches: PatchSet) -> None:
    after = _snapshot()
    for key, value in after.items():
        if key in before and before[key] is not value:
            patches.originals.setdefault(key, before[key])


def apply(model_type: str, keys: list[str]) -> PatchSet:
    """Swap in the kernels ``keys`` name for ``model_type``; return what was swapped."""
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    patches = PatchSet()
    if not keys:
        return patches
    fn = MODEL_TYPE_TO_APPLY_LIGER_FN.get(model_type)
    if fn is not None:
        params = inspect.signature(fn).parameters
        off = {p: False for p in params if isinstance(params[p].default, bool)}
        fn(**off)  # imports the modules it patches, patches nothing
        chosen = dict(off)
        for key in keys:
            names = [p for p in PARAMS[key] if p in params]
            if not names:
                raise LatheError(f"{key}: liger-kernel has no such kernel for model type {model_type!r}")
            chosen[names[0]] = True
        for loss in LOSS_PARAMS:
            chosen[loss] = False
        before = _snapshot()
        fn(**{k: v for k, v in chosen.items() if k in params})
        _record(before, patches)
        return patches
    own = OWN_SWAPS.get(model_type)
    missing = [k for k in keys if own is None or k not in own]
    if missing:
        raise LatheError(
            f"{missing[0]}: liger-kernel has no kernels for model type {model_type!r} "
            f"(liger serves {', '.join(sorted(MODEL_TYPE_TO_APPLY_LIGER_FN))}; lathe adds {', '.join(sorted(OWN_SWAPS))})"
        )
    import importlib

    modeling = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    replacements = _replacements()
    before = _snapshot()
    for key in keys:
        for name, kind in own[key].items():  # type: ignore[index]
            setattr(modeling, name, replacements[kind])
    _record(before, patches)
    return patches
