"""The optimizer a config names: checked for its package, then built by transformers'
registry (``TrainingArguments.optim``) or here (Axolotl's own names), as
:mod:`lathe.config.optimizer_names` records."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from lathe.config import optimizer_names
from lathe.errors import LatheError

if TYPE_CHECKING:
    import torch

    from lathe.config import Config


def canonical(name: str) -> str:
    """The name that builds ``name`` (Axolotl's aliases resolved)."""
    return optimizer_names.ALIASES.get(name, name)


def require_package(name: str) -> None:
    """Fail with what to install when the optimizer's package is missing (before any model loads)."""
    name = canonical(name)
    needs = optimizer_names.TRANSFORMERS.get(name) or optimizer_names.LATHE.get(name)
    if needs is not None and importlib.util.find_spec(needs.module) is None:
        raise LatheError(f"optimizer: {name} needs the {needs.module} package: {needs.install}")


def is_built_by_lathe(cfg: Config) -> bool:
    return canonical(cfg.optimizer) in optimizer_names.LATHE


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def optim_args(cfg: Config) -> dict[str, Any]:
    """``optim_args`` as a dict (Axolotl accepts a dict or ``"key=value,key=value"``)."""
    if not cfg.optim_args:
        return {}
    if isinstance(cfg.optim_args, dict):
        return dict(cfg.optim_args)
    out: dict[str, Any] = {}
    for item in cfg.optim_args.replace(" ", "").split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LatheError(f"optim_args: {item!r} is not key=value")
        out[key] = _parse_value(value)
    return out


def training_args_optim(cfg: Config) -> dict[str, Any]:
    """``TrainingArguments`` keys for the optimizer. A lathe-built optimizer is handed to the
    Trainer separately (:func:`optimizer_cls_and_kwargs`); ``optim`` then stays adamw_torch."""
    require_package(cfg.optimizer)
    if is_built_by_lathe(cfg):
        return {"optim": "adamw_torch"}
    out: dict[str, Any] = {"optim": canonical(cfg.optimizer)}
    extra = optim_args(cfg)
    if extra:
        out["optim_args"] = ",".join(f"{k}={v}" for k, v in extra.items())
    if cfg.optim_target_modules is not None:
        targets = cfg.optim_target_modules
        out["optim_target_modules"] = "all-linear" if targets == "all_linear" else list(targets)
    return out


def _adam_kwargs(cfg: Config) -> dict[str, Any]:
    """Axolotl passes betas only when both are set, and eps when set."""
    out: dict[str, Any] = {}
    if cfg.adam_beta1 is not None and cfg.adam_beta2 is not None:
        out["betas"] = (cfg.adam_beta1, cfg.adam_beta2)
    if cfg.adam_epsilon is not None:
        out["eps"] = cfg.adam_epsilon
    return out


def _embedding_params(model: torch.nn.Module) -> frozenset[int]:
    ids = set()
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, getter, lambda: None)()
        if module is not None:
            ids.update(id(p) for p in module.parameters())
    return frozenset(ids)


def _adopt_clip(step: int) -> float:
    """ADOPT's gradient clip, (k - 1) ** 0.25 at its k-th step: pytorch-optimizer counts steps
    from 1 where the ADOPT paper and Axolotl's copy count from 0 (their clip at step 1 is 1)."""
    return float(step - 1) ** 0.25


def optimizer_cls_and_kwargs(cfg: Config, model: torch.nn.Module) -> tuple[type, dict[str, Any]] | None:
    """The class and keyword arguments of a lathe-built optimizer (the Trainer adds the
    parameter groups, with no weight decay on biases and norms); None for transformers' names."""
    if not is_built_by_lathe(cfg):
        return None
    name = canonical(cfg.optimizer)
    kwargs: dict[str, Any] = {"lr": cfg.learning_rate, "weight_decay": cfg.weight_decay}
    adam = _adam_kwargs(cfg)
    cls: type
    if name == "muon":
        from lathe.train.muon import MuonWithAdamW

        cls = MuonWithAdamW
        kwargs.update(adam, adamw_only=_embedding_params(model))
    elif name == "came_pytorch":
        cls = importlib.import_module("came_pytorch").CAME
        kwargs["betas"] = (cfg.adam_beta1 or 0.9, cfg.adam_beta2 or 0.999, cfg.adam_beta3 or 0.9999)
        kwargs["eps"] = (cfg.adam_epsilon or 1e-30, cfg.adam_epsilon2 or 1e-16)
    elif name == "optimi_adamw":
        cls = importlib.import_module("optimi").AdamW
        kwargs.update(adam, foreach=False)
    elif name == "adopt_adamw":
        cls = importlib.import_module("pytorch_optimizer").ADOPT
        kwargs.update(adam, weight_decouple=True, clip_lambda=_adopt_clip)
    elif name == "ao_adamw_fp8":
        cls = importlib.import_module("torchao.optim").AdamWFp8
        kwargs.update(adam)
    else:  # flash_adamw, flash_adam, flash_sgd, flash_sgdw, flash_lion
        flash = importlib.import_module("flashoptim")
        cls = getattr(flash, {"flash_adamw": "FlashAdamW", "flash_adam": "FlashAdam", "flash_sgd": "FlashSGD",
                              "flash_sgdw": "FlashSGDW", "flash_lion": "FlashLion"}[name])
        if name in ("flash_adamw", "flash_adam"):
            kwargs.update(adam)
        elif name == "flash_lion" and "betas" in adam:
            kwargs["betas"] = adam["betas"]
    kwargs.update(optim_args(cfg))
    return cls, kwargs
