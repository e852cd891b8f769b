"""The hidden-states loss hook: the output head is found generically (tied, scaled, soft-capped),
a loss from hidden states trains exactly like the standard loss (token normalisation over the
accumulated batch kept), and two such losses conflict through the contract at validation."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lathe.config import ConfigError
from lathe.errors import LatheError
from lathe.hidden_loss import (
    HiddenStatesLoss,
    OutputHead,
    dense_loss,
    output_head,
    verify_output_head,
)
from tests.train.conftest import plugin
from tests.train.test_trainer import GradRecorder, _rows, _trainer

SMALL = dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
             num_attention_heads=4, num_key_value_heads=2, head_dim=8)


def _family(name: str, **extra: Any) -> torch.nn.Module:
    import transformers

    config_cls = {
        "llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config, "gemma2": transformers.Gemma2Config,
        "cohere": transformers.CohereConfig, "granite": transformers.GraniteConfig, "phi": transformers.PhiConfig,
    }[name]
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config_cls(**{**SMALL, **extra}), dtype=torch.float32)


@pytest.mark.parametrize(
    ("name", "extra", "scale", "softcap"),
    [
        ("llama", {}, 1.0, None),
        ("qwen2", {"tie_word_embeddings": True}, 1.0, None),
        ("gemma2", {"final_logit_softcapping": 2.0}, 1.0, 2.0),
        ("cohere", {"logit_scale": 0.5}, 0.5, None),
        ("granite", {"logits_scaling": 4.0}, 0.25, None),
        ("phi", {}, 1.0, None),  # lm_head has a bias
    ],
)
def test_output_head_reproduces_each_familys_logits(name: str, extra: dict[str, Any], scale: float, softcap: float | None) -> None:
    model = _family(name, **extra)
    head = output_head(model)
    assert (head.scale, head.softcap) == (scale, softcap)
    if extra.get("tie_word_embeddings"):
        assert head.weight is model.get_input_embeddings().weight
    if name == "phi":
        assert head.bias is not None
    ids = torch.tensor([[5, 17, 250, 3, 99, 42]])
    out = model(input_ids=ids, output_hidden_states=True)
    torch.testing.assert_close(head(out.hidden_states[-1]), out.logits, rtol=1e-5, atol=1e-5)
    verify_output_head(model, "some_key")


def test_a_head_lathe_cannot_reproduce_is_an_error_naming_the_key() -> None:
    model = _family("llama")
    model.config.logit_scale = 3.0  # lathe would scale; Llama does not
    with pytest.raises(LatheError, match=r"cut_cross_entropy: model type 'llama'"):
        verify_output_head(model, "cut_cross_entropy")


class DenseFromHidden(HiddenStatesLoss):
    config_key = "dense_from_hidden"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, hidden, head: OutputHead, labels, num_items, batch):  # type: ignore[no-untyped-def]
        self.calls += 1
        loss = dense_loss(hidden, head, labels, num_items)
        return loss, {"hidden_calls": float(self.calls)}


def test_hidden_states_loss_trains_like_the_standard_loss(cfg_of) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(4)
    runs = []
    for mbs, accum, fn in ((4, 1, None), (4, 1, DenseFromHidden()), (1, 4, DenseFromHidden()), (2, 2, DenseFromHidden())):
        recorder = GradRecorder()
        hooks: dict[str, Any] = {"lathe_callbacks": lambda cfg, r=recorder: [r]}
        if fn is not None:
            hooks["lathe_hidden_states_loss"] = lambda cfg, f=fn: f
        cfg = cfg_of(micro_batch_size=mbs, gradient_accumulation_steps=accum, max_steps=1, max_grad_norm=None)
        trainer = _trainer(cfg, rows, **hooks)
        trainer.train()
        logged = [h for h in trainer.state.log_history if "loss" in h][0]
        runs.append((logged["loss"], recorder.grads[0]))
        if fn is not None:
            assert fn.calls == accum and "hidden_calls" in logged  # the loss ran, its metric was logged
    (loss0, grads0), *others = runs
    for loss, grads in others:
        assert loss == pytest.approx(loss0, rel=1e-5)
        for name, grad in grads.items():
            torch.testing.assert_close(grad, grads0[name], rtol=1e-4, atol=1e-6, msg=name)


def test_two_hidden_states_losses_conflict_at_validation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lathe.config import validate
    from lathe.plugins import Plugins
    from lathe.testing import base_config

    class Other(DenseFromHidden):
        config_key = "other_loss"

    plugins = Plugins.from_modules({
        "one": plugin("one", lathe_hidden_states_loss=lambda cfg: DenseFromHidden()),
        "two": plugin("two", lathe_hidden_states_loss=lambda cfg: Other()),
    })
    with pytest.raises(ConfigError, match=r"'one' \(dense_from_hidden\) and 'two' \(other_loss\)"):
        validate(base_config(tmp_path), plugins)


def test_hidden_states_loss_refuses_a_plugin_trainer_with_its_own_loss(cfg_of) -> None:  # type: ignore[no-untyped-def]
    from transformers import Trainer

    class OwnLoss(Trainer):
        def compute_loss(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError

    with pytest.raises(LatheError, match="dense_from_hidden cannot be combined with the trainer OwnLoss"):
        _trainer(cfg_of(), _rows(2), lathe_trainer_cls=lambda cfg: OwnLoss,
                 lathe_hidden_states_loss=lambda cfg: DenseFromHidden())


def test_evaluation_uses_the_hidden_states_loss(cfg_of) -> None:  # type: ignore[no-untyped-def]
    fn = DenseFromHidden()
    trainer = _trainer(cfg_of(), _rows(4), eval_rows=_rows(2, seed=1), lathe_hidden_states_loss=lambda cfg: fn)
    with_hidden = trainer.evaluate()["eval_loss"]
    assert fn.calls > 0
    plain = _trainer(cfg_of(), _rows(4), eval_rows=_rows(2, seed=1)).evaluate()["eval_loss"]
    assert with_hidden == pytest.approx(plain, rel=1e-5)



def test_output_head_sees_through_lora_and_a_trained_lm_head_copy() -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_family("llama"), LoraConfig(r=2, target_modules=["q_proj"], modules_to_save=["lm_head"]))
    head = output_head(model)
    trained_copy = model.base_model.model.lm_head.modules_to_save["default"]
    assert head.weight is trained_copy.weight and head.weight.requires_grad
    verify_output_head(model, "some_key")
    lora_on_head = get_peft_model(_family("llama"), LoraConfig(r=2, target_modules=["lm_head"]))
    with pytest.raises(LatheError, match="not a plain linear layer"):
        output_head(lora_on_head)
