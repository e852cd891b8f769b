"""Reward models: ``reward_model: true`` (one score per conversation, Bradley–Terry) and
``process_reward_model: true`` (a class per reasoning step, cross-entropy).

The core builds the base model with the head :func:`lathe_rl.plugin.lathe_model_class` names
(``AutoModelForSequenceClassification`` with one label, ``AutoModelForTokenClassification`` with
``num_labels``, default 2); under LoRA peft trains and saves that new head with the adapter.

- Bradley–Terry (Bradley & Terry 1952; Ouyang et al. 2022): the model scores prompt + chosen and
  prompt + rejected, ``loss = -log σ(r_chosen - r_rejected)``, plus
  ``center_rewards_coefficient × (r_chosen + r_rejected)²`` when set (Eisenstein et al. 2023).
  The score is read where transformers' sequence-classification models read it: the last token
  that is not padding.
- Process reward (Lightman et al. 2023; Axolotl's ``stepwise_supervised`` rows): the prompt, then
  each step followed by ``step_separator``; the step's label sits on its last token (the
  separator's), every other token is -100; cross-entropy over the labelled tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from lathe.data.strategies import IGNORE, Example, PromptStrategy
from lathe.errors import LatheError
from lathe_rl import losses
from lathe_rl.strategies import ChatTemplatePreference, _text
from lathe_rl.trainer import PreferenceTrainer


class BradleyTerryChatTemplate(ChatTemplatePreference):
    """``bradley_terry.chat_template``: fields ``system`` (optional), ``input``, ``chosen`` and
    ``rejected`` (texts), rendered with the chat template as a system/user turn and the reply."""

    keys: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: Any, tokenizer: Any, options: dict[str, Any]):
        super().__init__(cfg, tokenizer, {**ChatTemplatePreference.keys, **options})

    def _messages(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        system = row.get("system")
        turns = [{"role": "system", "content": _text(system, "system")}] if system else []
        return [*turns, {"role": "user", "content": _text(self.field(row, "input"), "input")}]


class StepwiseSupervised(PromptStrategy):
    """``stepwise_supervised``: ``prompt`` (text), ``completions`` (the steps, texts) and ``labels``
    (one per step: true/false, or a class below ``num_labels``)."""

    keys: ClassVar[dict[str, Any]] = {"step_separator": "\n", "max_completion_length": None,
                                      "train_on_last_step_only": False}
    next_token_labels: ClassVar[bool] = False  # a label is its step's class

    def _label(self, value: Any, step: int) -> int:
        classes = self.cfg.num_labels or 2
        if isinstance(value, bool) or (isinstance(value, int) and 0 <= value < classes):
            return int(value)
        raise LatheError(f"field 'labels': step {step} has label {value!r}; expected true/false or a class "
                         f"0..{classes - 1} (num_labels: {classes})")

    def tokenize(self, row: dict[str, Any]) -> Example:
        steps, labels = self.field(row, "completions"), self.field(row, "labels")
        if not isinstance(steps, list) or not steps:
            raise LatheError(f"field 'completions': expected a non-empty list of steps, got {steps!r}")
        if not isinstance(labels, list) or len(labels) != len(steps):
            count = len(labels) if isinstance(labels, list) else type(labels).__name__
            raise LatheError(f"field 'labels': {count} labels for {len(steps)} completions; give one label per step")
        separator = self.encode(self.options["step_separator"], first=False)
        last_only = bool(self.options["train_on_last_step_only"])
        ids: list[int] = []
        targets: list[int] = []
        for i, (step, label) in enumerate(zip(steps, labels, strict=True)):
            step_ids = [*self.encode(_text(step, f"completions[{i}]"), first=False), *separator]
            if not step_ids:
                raise LatheError(f"field 'completions': step {i} is empty and step_separator adds no token")
            value = self._label(label, i) if not last_only or i == len(steps) - 1 else IGNORE
            ids += step_ids
            targets += [IGNORE] * (len(step_ids) - 1) + [value]
        limit = self.options["max_completion_length"]
        if limit:
            ids, targets = ids[:limit], targets[:limit]
        bos = self.tokenizer.bos_token_id
        prompt = ([bos] if bos is not None else []) + self.encode(_text(self.field(row, "prompt"), "prompt"), first=False)
        length = self.cfg.sequence_len
        return {"input_ids": [*prompt, *ids][:length], "labels": ([IGNORE] * len(prompt) + targets)[:length]}


def reward_strategies() -> dict[str, type[PromptStrategy]]:
    return {"bradley_terry.chat_template": BradleyTerryChatTemplate, "stepwise_supervised": StepwiseSupervised}


class RewardTrainer(PreferenceTrainer):
    """Bradley–Terry on the collated pairs (chosen rows, then rejected rows)."""

    def preference_loss(self, model: torch.nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rewards = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits[:, 0].float()
        n = rewards.shape[0] // 2
        chosen, rejected = rewards[:n], rewards[n:]
        per_pair = losses.bradley_terry_loss(chosen, rejected, self.settings.center_rewards)
        metrics = {"rewards/chosen": chosen.detach(), "rewards/rejected": rejected.detach(),
                   "rewards/margins": (chosen - rejected).detach(), "rewards/accuracies": (chosen > rejected).float()}
        return per_pair.mean(), metrics


class ProcessRewardTrainer(PreferenceTrainer):
    """Cross-entropy of the token-classification logits on the labelled (step-end) tokens."""

    lathe_next_token_labels = False  # a label is the class of its own token, not the next token

    def preference_loss(self, model: torch.nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits.float()
        labels = inputs["labels"]
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
        labelled = labels != IGNORE
        return loss, {"accuracy": (logits.argmax(-1)[labelled] == labels[labelled]).float()}


@torch.no_grad()
def score_text(cfg: Any, model: torch.nn.Module, tokenizer: Any, text: str) -> str:
    """``reward: r`` for a reward model; for a process reward model ``step labels: c (p=…), …`` at
    each token that ends a step (the last token of the first dataset's ``step_separator``)."""
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    device = next(model.parameters()).device
    logits = model(**{k: v.to(device) for k, v in enc.items()}).logits.float()
    if cfg.reward_model:
        return f"reward: {logits[0, 0].item():.4f}"
    entries = cfg.datasets or []
    default = StepwiseSupervised.keys["step_separator"]
    separator = (entries[0].model_extra or {}).get("step_separator", default) if entries else default
    ids = enc["input_ids"][0].tolist()
    end = tokenizer(separator, add_special_tokens=False)["input_ids"][-1:]
    ends = [i for i, token in enumerate(ids) if [token] == end] or [len(ids) - 1]
    probs = logits[0].softmax(-1)
    return "step labels: " + ", ".join(f"{int(probs[i].argmax())} (p={float(probs[i].max()):.3f})" for i in ends)

