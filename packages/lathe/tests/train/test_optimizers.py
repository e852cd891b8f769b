"""Every optimizer name Axolotl accepts: built through the library that provides it (and
stepping a tiny model), a clear error naming the package to install, or refused with a reason."""

from __future__ import annotations

import importlib.util
import re

import pytest
import torch

from lathe.config import optimizer_names
from lathe.config.load import ConfigError
from lathe.config.suggest import typo_of
from lathe.errors import LatheError
from tests.train.test_trainer import _rows, _trainer

# Axolotl 0.19.0, axolotl/utils/schemas/enums.py: CustomSupportedOptimizers (the rest of its
# accepted names are transformers' OptimizerNames, read from the installed transformers below).
AXOLOTL_CUSTOM = [
    "optimi_adamw", "ao_adamw_4bit", "ao_adamw_8bit", "ao_adamw_fp8", "adopt_adamw", "adamc", "came_pytorch",
    "muon", "dion", "sinkgd", "polora", "flash_adamw", "flash_adam", "flash_sgd", "flash_sgdw", "flash_lion",
    "q_galore_adamw8bit",
]


def test_every_axolotl_optimizer_name_is_accepted_or_refused() -> None:
    from transformers.training_args import OptimizerNames

    names = set(AXOLOTL_CUSTOM) | {o.value for o in OptimizerNames}
    unknown = names - optimizer_names.ACCEPTED - set(optimizer_names.REFUSED)
    assert not unknown
    assert not optimizer_names.ACCEPTED & set(optimizer_names.REFUSED)


def _needs(name: str):  # type: ignore[no-untyped-def]
    name = optimizer_names.ALIASES.get(name, name)
    return optimizer_names.TRANSFORMERS.get(name) or optimizer_names.LATHE.get(name)


def _installed(name: str) -> bool:
    needs = _needs(name)
    return needs is None or importlib.util.find_spec(needs.module) is not None


# bitsandbytes (>= 0.45) runs its optimizers on CPU too: they step here wherever it is installed
_GPU_ONLY = {"torch_xla", "torch_npu", "flashoptim"}


@pytest.mark.parametrize("name", sorted(optimizer_names.ACCEPTED))
def test_optimizer_steps_a_tiny_model_or_names_its_package(cfg_of, name: str) -> None:  # type: ignore[no-untyped-def]
    extra = {"optim_target_modules": ["q_proj", "v_proj"]} if name in optimizer_names.NEED_TARGET_MODULES else {}
    # RAdam's first steps are rectification-only (no update): run it past them
    steps = 8 if name == "schedule_free_radam" else 2
    cfg = cfg_of(optimizer=name, max_steps=steps, micro_batch_size=2, **extra)
    if not _installed(name):
        needs = _needs(name)
        with pytest.raises(LatheError, match=re.escape(f"needs the {needs.module} package: {needs.install}")):
            _trainer(cfg, _rows(4))
        return
    needs = _needs(name)
    if needs is not None and needs.module in _GPU_ONLY and not torch.cuda.is_available():
        pytest.skip(f"{needs.module} optimizers need an accelerator")
    trainer = _trainer(cfg, _rows(2 * steps))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    changed = [n for n, p in trainer.model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert changed, f"{name}: no parameter changed"
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(torch.isfinite(torch.tensor(losses)))


def test_lathe_built_optimizers_use_the_providing_library(cfg_of) -> None:  # type: ignore[no-untyped-def]
    from came_pytorch import CAME
    from optimi import AdamW as OptimiAdamW

    def opt(**kw):  # type: ignore[no-untyped-def]
        return _trainer(cfg_of(**kw), _rows(4)).create_optimizer()

    came = opt(optimizer="came_pytorch", adam_beta1=0.8, adam_beta3=0.99, adam_epsilon2=1e-12)
    assert isinstance(came, CAME)
    assert came.defaults["betas"] == (0.8, 0.999, 0.99) and came.defaults["eps"] == (1e-30, 1e-12)
    optimi = opt(optimizer="optimi_adamw", adam_beta1=0.8, adam_beta2=0.95, optim_args={"kahan_sum": True})
    assert isinstance(optimi, OptimiAdamW)
    assert (optimi.defaults["beta1"], optimi.defaults["beta2"]) == (0.8, 0.95) and optimi.defaults["kahan_sum"] is True
    assert optimi.defaults["foreach"] is False
    sgd = opt(optimizer="sgd", optim_args="momentum=0.5,nesterov=true")
    assert sgd.defaults["momentum"] == 0.5 and sgd.defaults["nesterov"] is True


def test_muon_on_hidden_matrices_adamw_on_the_rest_and_state_round_trips(cfg_of) -> None:  # type: ignore[no-untyped-def]
    from lathe.train.muon import MuonWithAdamW

    trainer = _trainer(cfg_of(optimizer="muon", weight_decay=0.01), _rows(4))
    opt = trainer.create_optimizer()
    assert isinstance(opt, MuonWithAdamW)
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    muon = {names[id(p)] for g in opt.muon.param_groups for p in g["params"]}
    adam = {names[id(p)] for g in opt.adamw.param_groups for p in g["params"]}
    assert muon and all("proj" in n for n in muon)  # attention and MLP matrices
    assert "model.embed_tokens.weight" in adam and all("norm" in n or "embed" in n or "lm_head" in n for n in adam)
    assert len(opt.param_groups) == len(opt.muon.param_groups) + len(opt.adamw.param_groups)
    trainer.train()
    state = opt.state_dict()
    fresh = _trainer(cfg_of(optimizer="muon", weight_decay=0.01), _rows(4)).create_optimizer()
    fresh.load_state_dict(state)
    assert fresh.state_dict()["muon"]["state"].keys() == state["muon"]["state"].keys()


def test_did_you_mean_suggests_typos_only(cfg_of) -> None:  # type: ignore[no-untyped-def]
    names = sorted(optimizer_names.ACCEPTED)
    assert typo_of("adamw_torch_8bt", names) == "adamw_torch_8bit"
    assert typo_of("muonn", names) == "muon"
    assert typo_of("adamw_torch_16bit", names) is None  # not adamw_torch: another meaning
    assert typo_of("paged_adamw", names) is None
    assert typo_of("lomo_q", names) is None  # a part added: not a typo of lomo
    assert typo_of("sgd_x", names) is None
    assert typo_of("adamw_torch_x", names) == "adamw_torch_xla"  # but a typo of adamw_torch_xla
    assert typo_of("lion_16bit", names) is None  # not lion_8bit: other digits
    with pytest.raises(ConfigError, match="unknown optimizer 'adamw_torch_16bit' \\(the accepted"):
        cfg_of(optimizer="adamw_torch_16bit")
    with pytest.raises(ConfigError, match="did you mean 'schedule_free_adamw'"):
        cfg_of(optimizer="schedule_free_adamww")


def test_refused_optimizers_and_ignored_arguments_are_errors(cfg_of) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="optimizer 'dion' is not available in lathe: needs Microsoft's dion"):
        cfg_of(optimizer="dion")
    with pytest.raises(ConfigError, match="optim_args: optimizer adamw_torch reads no optim_args"):
        cfg_of(optimizer="adamw_torch", optim_args={"foo": 1})
    with pytest.raises(ConfigError, match="optim_args: optimizer sgd reads only dampening, momentum, nesterov, weight_decay, not betas"):
        cfg_of(optimizer="sgd", optim_args="momentum=0.9, betas=1")
    with pytest.raises(ConfigError, match="galore_adamw needs optim_target_modules"):
        cfg_of(optimizer="galore_adamw")
    with pytest.raises(ConfigError, match="optim_target_modules is read only by"):
        cfg_of(optimizer="adamw_torch", optim_target_modules=["q_proj"])


def test_adopt_adamw_matches_hand_computed_adopt_steps(cfg_of) -> None:  # type: ignore[no-untyped-def]
    """ADOPT (Taniguchi et al. 2024) as Axolotl configures it: decoupled weight decay, the update
    normalised by the *previous* second moment, clipped at (k-1)**0.25 on the k-th step."""
    from pytorch_optimizer import ADOPT

    from lathe.train.optimizers import optimizer_cls_and_kwargs

    lr, wd, b1, b2, eps = 0.1, 0.5, 0.8, 0.9, 1e-6
    cfg = cfg_of(optimizer="adopt_adamw", learning_rate=lr, weight_decay=wd, adam_beta1=b1, adam_beta2=b2,
                 adam_epsilon=eps)
    cls, kwargs = optimizer_cls_and_kwargs(cfg, torch.nn.Module())  # type: ignore[misc]
    assert cls is ADOPT
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = cls([param], **kwargs)
    grads = [torch.tensor(g, dtype=torch.float64) for g in ([0.5, 1.0], [2.0, -0.5], [-1.0, 3.0])]
    p, m, v = param.detach().clone(), torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for k, g in enumerate(grads, start=1):
        param.grad = g.clone()
        opt.step()
        p = p * (1 - lr * wd)  # decoupled decay (pytorch-optimizer applies it on step 1 too)
        if k == 1:
            v = g * g  # the first step only records the second moment
        else:
            clip = (k - 1) ** 0.25  # 1 on step 2: clips g/sqrt(v) = 4 → 1
            m = b1 * m + (1 - b1) * (g / v.sqrt().clamp(min=eps)).clamp(-clip, clip)
            p = p - lr * m
            v = b2 * v + (1 - b2) * g * g
        torch.testing.assert_close(param.detach(), p)


def test_adopt_adamw_without_pytorch_optimizer_names_the_package(cfg_of, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pytorch_optimizer" else real(n, *a))
    with pytest.raises(LatheError, match=re.escape("adopt_adamw needs the pytorch_optimizer package: pip install pytorch-optimizer")):
        _trainer(cfg_of(optimizer="adopt_adamw", max_steps=1), _rows(2))
