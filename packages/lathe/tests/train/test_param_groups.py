"""Per-group learning rates as Axolotl builds them: embedding_lr(_scale), lr_groups, LoRA+."""

from __future__ import annotations

import pytest

from lathe.config.load import ConfigError
from tests.train.test_trainer import _rows, _trainer


def _lr_by_param(cfg_of, **overrides):  # type: ignore[no-untyped-def]
    trainer = _trainer(cfg_of(**overrides), _rows(4))
    opt = trainer.create_optimizer()
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    out = {}
    for group in opt.param_groups:
        for p in group["params"]:
            out[names[id(p)]] = (group["lr"], group["weight_decay"])
    return out, trainer


def test_embedding_lr_scale_and_lr_groups(cfg_of) -> None:  # type: ignore[no-untyped-def]
    lrs, trainer = _lr_by_param(cfg_of, learning_rate=1e-3, weight_decay=0.1, embedding_lr_scale=0.5,
                                lr_groups=[{"name": "mlp", "modules": ["mlp"], "lr": 3e-4}])
    assert lrs["model.embed_tokens.weight"] == (5e-4, 0.0) and lrs["lm_head.weight"] == (5e-4, 0.0)
    assert lrs["model.layers.0.mlp.up_proj.weight"] == (3e-4, 0.1)
    assert lrs["model.layers.0.self_attn.q_proj.weight"] == (1e-3, 0.1)
    assert lrs["model.norm.weight"] == (1e-3, 0.0)
    trainer.train()  # the grouped optimizer really steps
    lrs, _ = _lr_by_param(cfg_of, learning_rate=1e-3, embedding_lr=2e-5)
    assert lrs["model.embed_tokens.weight"][0] == 2e-5 and lrs["model.layers.0.mlp.up_proj.weight"][0] == 1e-3


def test_loraplus_gives_lora_b_a_larger_learning_rate(cfg_of) -> None:  # type: ignore[no-untyped-def]
    lrs, trainer = _lr_by_param(cfg_of, learning_rate=1e-3, adapter="lora", lora_target_modules=["q_proj"],
                                loraplus_lr_ratio=16)
    a = [v for n, v in lrs.items() if "lora_A" in n]
    b = [v for n, v in lrs.items() if "lora_B" in n]
    assert a and b and {lr for lr, _ in a} == {1e-3} and {lr for lr, _ in b} == {1.6e-2}
    trainer.train()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"embedding_lr": 1e-5, "embedding_lr_scale": 0.1}, "set embedding_lr or embedding_lr_scale, not both"),
    ({"loraplus_lr_ratio": 4}, "loraplus_lr_ratio needs adapter"),
    ({"adapter": "lora", "lora_target_linear": True, "loraplus_lr_ratio": 4, "embedding_lr": 1e-5},
     "cannot be combined with embedding_lr"),
    ({"loraplus_lr_embedding": 1e-6}, "loraplus_lr_embedding needs loraplus_lr_ratio"),
])
def test_group_settings_that_would_be_ignored_are_refused(cfg_of, overrides, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        cfg_of(**overrides)
