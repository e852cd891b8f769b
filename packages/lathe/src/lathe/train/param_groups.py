"""Per-group learning rates with Axolotl's meanings: ``embedding_lr`` / ``embedding_lr_scale``,
``lr_groups`` and LoRA+ (``loraplus_lr_ratio``, ``loraplus_lr_embedding``).

Axolotl's grouping: parameters whose names contain ``embed_tokens`` or ``lm_head`` (or a PEFT
``modules_to_save`` copy) form the embedding group (no weight decay; lr ×
``embedding_lr_scale``, or ``embedding_lr``); other decayed parameters whose names contain
one of an ``lr_groups`` entry's ``modules`` take that entry's ``lr``; the rest keep
``learning_rate`` (no decay on biases and norms). LoRA+ is PEFT's
``create_loraplus_optimizer``: the LoRA B matrices learn ``loraplus_lr_ratio`` × faster,
embedding LoRA parameters at ``loraplus_lr_embedding`` (default 1e-6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from lathe.config import Config


def needs_custom_groups(cfg: Config) -> bool:
    return any(v is not None for v in (cfg.embedding_lr, cfg.embedding_lr_scale, cfg.lr_groups, cfg.loraplus_lr_ratio))


def _is_embedding(name: str) -> bool:
    return name.endswith("modules_to_save.default.weight") or "embed_tokens" in name or "lm_head" in name


def grouped_parameters(cfg: Config, model: torch.nn.Module, decay_names: set[str], lr: float) -> list[dict[str, Any]]:
    groups: dict[str, list[Any]] = {"decay": [], "embeddings": [], "no_decay": []}
    named_groups = {g.name: [] for g in cfg.lr_groups or []}  # type: ignore[var-annotated]
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if _is_embedding(name):
            groups["embeddings"].append(param)
        elif name in decay_names:
            owner = next((g.name for g in cfg.lr_groups or [] if any(m in name for m in g.modules)), None)
            (named_groups[owner] if owner else groups["decay"]).append(param)
        else:
            groups["no_decay"].append(param)
    embedding_lr = lr * cfg.embedding_lr_scale if cfg.embedding_lr_scale else (cfg.embedding_lr or lr)
    out = [
        {"params": groups["decay"], "weight_decay": cfg.weight_decay, "lr": lr},
        {"params": groups["embeddings"], "weight_decay": 0.0, "lr": embedding_lr},
        {"params": groups["no_decay"], "weight_decay": 0.0, "lr": lr},
    ]
    out += [{"params": named_groups[g.name], "weight_decay": cfg.weight_decay, "lr": g.lr} for g in cfg.lr_groups or []]
    return [g for g in out if g["params"]]


def build_grouped_optimizer(cfg: Config, model: torch.nn.Module, cls: type, kwargs: dict[str, Any],
                            decay_names: set[str]) -> torch.optim.Optimizer:
    """The optimizer ``cls(**kwargs)`` over lathe's groups, or PEFT's LoRA+ optimizer."""
    kwargs = dict(kwargs)
    if cfg.loraplus_lr_ratio is not None:
        from peft.optimizers import create_loraplus_optimizer

        embedding = cfg.loraplus_lr_embedding if cfg.loraplus_lr_embedding is not None else 1e-6
        return create_loraplus_optimizer(  # type: ignore[no-any-return]
            model, cls, loraplus_lr_ratio=cfg.loraplus_lr_ratio, loraplus_lr_embedding=embedding, **kwargs
        )
    lr = kwargs.pop("lr")
    kwargs.pop("weight_decay", None)
    return cls(grouped_parameters(cfg, model, decay_names, lr), lr=lr, **kwargs)  # type: ignore[no-any-return]
