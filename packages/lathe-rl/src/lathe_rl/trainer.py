"""The preference trainer: a ``transformers.Trainer`` whose loss is the configured method's.

One forward pass of the policy over the collated batch (chosen then rejected, or KTO rows then
their mismatched KL rows) gives every sequence's summed and averaged completion log-probability;
the reference model (dpo, ipo, kto) runs the same batch without gradients. The reference is,
in this order: ``ref_model`` loaded from its path; under LoRA/QLoRA the same model with its
adapter disabled (no second copy of the weights); else a frozen copy of the starting model,
taken when the trainer is built (before a checkpoint is loaded, so a resumed run keeps the
original reference).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from transformers import Trainer

from lathe.data.strategies import IGNORE
from lathe_rl import losses
from lathe_rl.config import beta_of, method_of
from lathe_rl.strategies import KTO_LABEL

NEEDS_REFERENCE = ("dpo", "ipo", "kto")


@dataclass(frozen=True)
class Settings:
    """The numbers the loss reads, resolved from the config once."""

    method: str
    beta: float
    smoothing: float = 0.0
    weighting: bool = False
    simpo_gamma: float = 0.5
    cpo_alpha: float = 1.0
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    ref_model: str | None = None
    center_rewards: float = 0.0

    @classmethod
    def from_config(cls, cfg: Any) -> Settings:
        def given(value: Any, default: float) -> float:
            return float(value) if value is not None else default

        return cls(
            method=str(method_of(cfg)), beta=beta_of(cfg), smoothing=given(cfg.dpo_label_smoothing, 0.0),
            weighting=bool(cfg.dpo_use_weighting), simpo_gamma=given(cfg.simpo_gamma, 0.5),
            cpo_alpha=given(cfg.cpo_alpha, 1.0), desirable_weight=given(cfg.kto_desirable_weight, 1.0),
            undesirable_weight=given(cfg.kto_undesirable_weight, 1.0), ref_model=cfg.ref_model,
            center_rewards=given(cfg.center_rewards_coefficient, 0.0),
        )


@dataclass
class SequenceLogps:
    """Per sequence: summed completion log-probability, token count, and (WPO) weight."""

    total: torch.Tensor
    count: torch.Tensor
    weight: torch.Tensor | None = None

    @property
    def mean(self) -> torch.Tensor:
        return self.total / self.count.clamp(min=1)


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, weighting: bool = False) -> SequenceLogps:
    """Log-probabilities of each row's labelled tokens (label at i is predicted from position i-1)."""
    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    mask = targets != IGNORE
    logprobs = logits.log_softmax(-1)
    token = logprobs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
    count = mask.sum(-1)
    weight = None
    if weighting:  # WPO: mean over tokens of log p(token) - log Σ_v p(v)², detached
        adjusted = (token - torch.logsumexp(2 * logprobs, dim=-1) * mask).detach()
        weight = adjusted.sum(-1) / count.clamp(min=1)
    return SequenceLogps(token.sum(-1), count, weight)


class PreferenceTrainer(Trainer):
    """Set ``settings`` on a subclass (:func:`trainer_for`); lathe mixes its behaviour in front."""

    settings: Settings

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # the loss is a mean over pairs: the Trainer must divide by gradient_accumulation_steps
        self.model_accepts_loss_kwargs = False
        self.ref_model: torch.nn.Module | None = None
        self.rl_metrics: dict[str, list[float]] = {}
        if self.needs_reference() and not self._adapter_reference():
            self.ref_model = self._load_reference()

    def needs_reference(self) -> bool:
        return self.settings.method in NEEDS_REFERENCE or (self.settings.method == "grpo" and self.settings.beta > 0)

    def _adapter_reference(self) -> bool:
        from peft import PeftModel

        return self.settings.ref_model is None and isinstance(self.model, PeftModel)

    def _load_reference(self) -> torch.nn.Module:
        if self.settings.ref_model is not None:
            from transformers import AutoModelForCausalLM

            dtype = next(self.model.parameters()).dtype
            ref = AutoModelForCausalLM.from_pretrained(self.settings.ref_model, torch_dtype=dtype)
        else:
            ref = copy.deepcopy(self.accelerator.unwrap_model(self.model))
        ref.to(self.args.device).eval()
        ref.requires_grad_(False)
        return ref

    def _forward(self, model: torch.nn.Module, inputs: dict[str, Any]) -> SequenceLogps:
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
        return sequence_logps(out.logits, inputs["labels"], self.settings.weighting)

    @torch.no_grad()
    def reference_logps(self, model: torch.nn.Module, inputs: dict[str, Any]) -> SequenceLogps:
        if self.ref_model is not None:
            return self._forward(self.ref_model, inputs)
        with self.accelerator.unwrap_model(model).disable_adapter():
            return self._forward(model, inputs)

    def preference_loss(self, model: torch.nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The batch's mean loss and the metrics to log (rewards as TRL logs them)."""
        s = self.settings
        policy = self._forward(model, inputs)
        ref = self.reference_logps(model, inputs) if s.method in NEEDS_REFERENCE else None
        if s.method == "kto":
            return self._kto(policy, ref, inputs[KTO_LABEL])  # type: ignore[arg-type]
        n = policy.total.shape[0] // 2
        pc, pr, avg_c, avg_r = policy.total[:n], policy.total[n:], policy.mean[:n], policy.mean[n:]
        nll = -pc.sum() / policy.count[:n].sum().clamp(min=1)  # token mean over the chosen completions (TRL)
        metrics: dict[str, torch.Tensor] = {"logps/chosen": pc.detach(), "logps/rejected": pr.detach()}
        if ref is not None:
            rc, rr = ref.total[:n], ref.total[n:]
            if s.method == "dpo":
                per_pair = losses.dpo_loss(pc, pr, rc, rr, s.beta, s.smoothing)
            else:
                per_pair = losses.ipo_loss(avg_c, avg_r, ref.mean[:n], ref.mean[n:], s.beta)
            chosen_reward, rejected_reward = s.beta * (pc - rc).detach(), s.beta * (pr - rr).detach()
            if policy.weight is not None:
                per_pair = per_pair * torch.clamp(torch.exp(policy.weight[:n] + policy.weight[n:]), max=1)
        elif s.method == "orpo":
            per_pair = losses.orpo_loss(avg_c, avg_r, nll, s.beta)
            chosen_reward, rejected_reward = s.beta * avg_c.detach(), s.beta * avg_r.detach()
        elif s.method == "cpo":
            per_pair = losses.cpo_loss(pc, pr, nll, s.beta, s.cpo_alpha)
            chosen_reward, rejected_reward = s.beta * pc.detach(), s.beta * pr.detach()
        else:  # simpo
            per_pair = losses.simpo_loss(avg_c, avg_r, nll, s.beta, s.simpo_gamma, s.cpo_alpha)
            chosen_reward, rejected_reward = s.beta * avg_c.detach(), s.beta * avg_r.detach()
        if ref is None:
            metrics["nll_loss"] = nll.detach().reshape(1)
        metrics.update({
            "rewards/chosen": chosen_reward, "rewards/rejected": rejected_reward,
            "rewards/margins": chosen_reward - rejected_reward,
            "rewards/accuracies": (chosen_reward > rejected_reward).float(),
        })
        return per_pair.mean(), metrics

    def _kto(self, policy: SequenceLogps, ref: SequenceLogps, desirable: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = self.settings
        n = desirable.shape[0]
        kl = losses.kl_estimate(policy.total[n:], ref.total[n:])
        per_row = losses.kto_loss(policy.total[:n], ref.total[:n], desirable, kl, s.beta,
                                  s.desirable_weight, s.undesirable_weight)
        rewards = s.beta * (policy.total[:n] - ref.total[:n]).detach()
        metrics = {"kl": kl.reshape(1)}
        if desirable.any():
            metrics["rewards/chosen"] = rewards[desirable]
        if (~desirable).any():
            metrics["rewards/rejected"] = rewards[~desirable]
        return per_row.mean(), metrics

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        loss, metrics = self.preference_loss(model, inputs)
        split = "train" if model.training else "eval"
        for name, values in metrics.items():
            self.rl_metrics.setdefault(f"{split}/{name}", []).extend(values.float().cpu().tolist())
        return (loss, {"loss": loss}) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the means of the metrics gathered since the last log line (``rewards/margins``, …)."""
        split = "eval" if any(k.startswith("eval_") for k in logs) else "train"
        for key in [k for k in self.rl_metrics if k.startswith(split + "/")]:
            values = self.rl_metrics.pop(key)
            name = key.split("/", 1)[1]
            logs[f"eval_{name}" if split == "eval" else name] = sum(values) / len(values)
        super().log(logs, start_time)


def trainer_for(cfg: Any) -> type[PreferenceTrainer]:
    settings = Settings.from_config(cfg)
    if settings.method == "grpo":
        from lathe_rl.grpo import grpo_trainer_for

        return grpo_trainer_for(cfg, settings)
    base: type[PreferenceTrainer] = PreferenceTrainer
    if settings.method in ("reward", "prm"):
        from lathe_rl.reward import ProcessRewardTrainer, RewardTrainer

        base = RewardTrainer if settings.method == "reward" else ProcessRewardTrainer
    return type(f"{settings.method.upper()}Trainer", (base,), {"settings": settings})

