"""Every optimizer name Axolotl accepts, who builds it, and the package it needs.

Pure data (no torch import): the config validates names against it, and
:mod:`lathe.train.optimizers` builds from it. Two builders:

- ``TRANSFORMERS``: transformers' optimizer registry builds it (``TrainingArguments.optim``),
  exactly as Axolotl hands these names over;
- ``LATHE``: Axolotl's own additions (``CustomSupportedOptimizers``), built by lathe from the
  library that provides each.

A name whose package is missing is a clear error naming what to ``pip install``; a name lathe
cannot build is refused with the reason (``REFUSED``).
"""

from __future__ import annotations

from typing import NamedTuple


class Needs(NamedTuple):
    """The import that must succeed, and what to tell the user to install."""

    module: str
    install: str


_BNB = Needs("bitsandbytes", "pip install 'lathe[bnb]'")
_TORCHAO = Needs("torchao", "pip install torchao")
_SCHEDULEFREE = Needs("schedulefree", "pip install schedulefree")
_OPTIMI = Needs("optimi", "pip install torch-optimi")
_FLASHOPTIM = Needs("flashoptim", "pip install flashoptim")

# name → package needed (None: torch alone). Built by transformers from TrainingArguments.optim.
TRANSFORMERS: dict[str, Needs | None] = {
    "adamw_torch": None,
    "adamw_torch_fused": None,
    "adafactor": None,
    "sgd": None,
    "adagrad": None,
    "rmsprop": None,
    "adamw_torch_4bit": _TORCHAO,
    "adamw_torch_8bit": _TORCHAO,
    "adamw_bnb_8bit": _BNB,
    "adamw_8bit": _BNB,
    "ademamix": _BNB,
    "ademamix_8bit": _BNB,
    "lion_8bit": _BNB,
    "lion_32bit": _BNB,
    "paged_adamw_32bit": _BNB,
    "paged_adamw_8bit": _BNB,
    "paged_ademamix_32bit": _BNB,
    "paged_ademamix_8bit": _BNB,
    "paged_lion_32bit": _BNB,
    "paged_lion_8bit": _BNB,
    "rmsprop_bnb": _BNB,
    "rmsprop_bnb_8bit": _BNB,
    "rmsprop_bnb_32bit": _BNB,
    "galore_adamw": Needs("galore_torch", "pip install galore-torch"),
    "galore_adamw_8bit": Needs("galore_torch", "pip install galore-torch"),
    "galore_adafactor": Needs("galore_torch", "pip install galore-torch"),
    "galore_adamw_layerwise": Needs("galore_torch", "pip install galore-torch"),
    "galore_adamw_8bit_layerwise": Needs("galore_torch", "pip install galore-torch"),
    "galore_adafactor_layerwise": Needs("galore_torch", "pip install galore-torch"),
    "apollo_adamw": Needs("apollo_torch", "pip install apollo-torch"),
    "apollo_adamw_layerwise": Needs("apollo_torch", "pip install apollo-torch"),
    "lomo": Needs("lomo_optim", "pip install lomo-optim"),
    "adalomo": Needs("lomo_optim", "pip install lomo-optim"),
    "grokadamw": Needs("grokadamw", "pip install grokadamw"),
    "schedule_free_adamw": _SCHEDULEFREE,
    "schedule_free_radam": _SCHEDULEFREE,
    "schedule_free_sgd": _SCHEDULEFREE,
    "stable_adamw": _OPTIMI,
    "adamw_anyprecision": Needs("torchdistx", "torchdistx is not on PyPI: build it from its source"),
    "adamw_torch_xla": Needs("torch_xla", "pip install torch-xla (TPU only)"),
    "adamw_torch_npu_fused": Needs("torch_npu", "pip install torch-npu (Ascend NPU only)"),
}

# Axolotl's own names, built by lathe.train.optimizers.
LATHE: dict[str, Needs | None] = {
    "muon": None,  # torch.optim.Muon on hidden matrices, AdamW on the rest
    "came_pytorch": Needs("came_pytorch", "pip install came-pytorch"),
    "optimi_adamw": _OPTIMI,
    "ao_adamw_fp8": _TORCHAO,
    "flash_adamw": _FLASHOPTIM,
    "flash_adam": _FLASHOPTIM,
    "flash_sgd": _FLASHOPTIM,
    "flash_sgdw": _FLASHOPTIM,
    "flash_lion": _FLASHOPTIM,
    "adopt_adamw": Needs("pytorch_optimizer", "pip install pytorch-optimizer"),  # ADOPT, decoupled decay
}

# Axolotl names for an optimizer that another name already builds (same class, same meaning).
ALIASES: dict[str, str] = {
    "ao_adamw_4bit": "adamw_torch_4bit",  # torchao.optim.AdamW4bit
    "ao_adamw_8bit": "adamw_torch_8bit",  # torchao.optim.AdamW8bit
}

_AXOLOTL_ONLY = "is implemented inside Axolotl itself and published in no package lathe could build it from"
REFUSED: dict[str, str] = {
    "dion": "needs Microsoft's dion package, which is not on PyPI; use muon (the same orthogonalised-update family)",
    "sinkgd": f"{_AXOLOTL_ONLY}; use muon or adamw_torch",
    "polora": f"{_AXOLOTL_ONLY}; use adamw_torch",
    "adamc": f"{_AXOLOTL_ONLY}; use adamw_torch",
    "q_galore_adamw8bit": "needs Axolotl's patches to q-galore-torch for current bitsandbytes; use galore_adamw_8bit",
}

# transformers builds these without reading optim_args: extra arguments would be silently dropped.
NO_OPTIM_ARGS: frozenset[str] = frozenset(
    {"adamw_torch", "adamw_torch_fused", "adafactor", "adamw_torch_4bit", "adamw_torch_8bit",
     "adamw_torch_xla", "adamw_torch_npu_fused", "ao_adamw_4bit", "ao_adamw_8bit"}
)
# transformers reads only these optim_args keys for these names (and drops any other silently).
_SF = frozenset({"weight_lr_power", "r"})
OPTIM_ARGS_READ: dict[str, frozenset[str]] = {
    "sgd": frozenset({"momentum", "dampening", "weight_decay", "nesterov"}),
    "adagrad": frozenset({"lr_decay", "weight_decay", "eps"}),
    "rmsprop": frozenset({"momentum", "alpha", "eps", "weight_decay", "centered"}),
    "schedule_free_adamw": _SF, "schedule_free_radam": _SF, "schedule_free_sgd": _SF,
    "adamw_anyprecision": frozenset({"use_kahan_summation", "momentum_dtype", "variance_dtype", "compensation_buffer_dtype"}),
}
# these project gradients onto low-rank subspaces of the modules named by optim_target_modules.
NEED_TARGET_MODULES: frozenset[str] = frozenset(n for n in TRANSFORMERS if n.startswith(("galore_", "apollo_")))

ACCEPTED: frozenset[str] = frozenset(TRANSFORMERS) | frozenset(LATHE) | frozenset(ALIASES)
