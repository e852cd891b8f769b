"""GRPO (Shao et al. 2024): sample ``num_generations`` completions per prompt in-process, score
them with the reward functions, and push up the log-probability of the ones above their group's
mean reward.

Per completion i of a prompt's group: ``A_i = (r_i - mean(r)) / (std(r) + 1e-4)``. One policy
update per generation batch, so the PPO ratio is 1 and the token loss is
``-exp(log π - sg(log π)) A_i`` (its gradient is ``-A_i ∇ log π``), plus, when ``beta > 0``,
``β (e^{ref - log π} - (ref - log π) - 1)`` (the k3 KL estimator against the reference model).
``loss_type`` averages the token losses as TRL does: ``grpo`` per completion then over
completions; ``bnpo``/``dapo`` over every completion token of the batch; ``dr_grpo`` divided by
completions × ``max_completion_length``.

Completions are also handed to anything that subscribed to ``trainer.lathe_completions`` (the
swanlab plugin's completion table): ``{"prompt", "completion", "reward"}`` per completion.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from lathe.data.strategies import Example, PromptStrategy
from lathe.errors import LatheError
from lathe_rl.rewards import RewardFn, load_function, load_reward, user_file
from lathe_rl.strategies import REWARD_COLUMNS
from lathe_rl.trainer import PreferenceTrainer


class PromptOnly(PromptStrategy):
    """``grpo.chat_template``: the prompt in ``field_prompt`` (text, or a message list) rendered with
    the chat template and its generation prompt; the row's other fields go to the reward functions."""

    keys: ClassVar[dict[str, Any]] = {"field_prompt": "prompt"}

    def tokenize(self, row: dict[str, Any]) -> Example:
        name = self.options["field_prompt"]
        prompt = self.field(row, name)
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        others = {k: v for k, v in row.items() if k != name}
        # labels: the prompt (never trained; kept so the row is not dropped as having nothing to train)
        return {"input_ids": ids, "labels": ids, REWARD_COLUMNS: [json.dumps(others)]}


class CompletionLog:
    """Completions as they are generated, for subscribers (``fn(step, row)``)."""

    kind = "grpo"

    def __init__(self) -> None:
        self.subscribers: list[Callable[[int, dict[str, Any]], None]] = []

    def subscribe(self, fn: Callable[[int, dict[str, Any]], None]) -> None:
        self.subscribers.append(fn)

    def emit(self, step: int, row: dict[str, Any]) -> None:
        for fn in self.subscribers:
            fn(step, row)


class GRPOTrainer(PreferenceTrainer):
    """Generation, rewards and the GRPO loss; the reference model (when ``beta > 0``) as the
    preference trainer's."""

    rewards: ClassVar[list[tuple[str, RewardFn, float]]]
    generation: ClassVar[dict[str, Any]]
    loss_type: ClassVar[str]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lathe_completions = CompletionLog()

    def _generate(self, model: torch.nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(prompt + completion ids, their attention mask, prompt width), each prompt G times."""
        g = self.generation["num_generations"]
        ids = inputs["input_ids"].repeat_interleave(g, 0)
        mask = inputs["attention_mask"].repeat_interleave(g, 0)
        tok = self.processing_class
        unwrapped = self.accelerator.unwrap_model(model)
        was_training = unwrapped.training
        unwrapped.eval()
        with torch.no_grad():
            out = unwrapped.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, temperature=self.generation["temperature"],
                max_new_tokens=self.generation["max_completion_length"], top_k=0, top_p=1.0,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                eos_token_id=tok.eos_token_id,
            )
        unwrapped.train(was_training)
        width = ids.shape[1]
        completion = out[:, width:]
        is_eos = completion == tok.eos_token_id
        # completion tokens up to and including the first EOS
        first = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full_like(is_eos[:, 0], completion.shape[1], dtype=torch.long))
        keep = (torch.arange(completion.shape[1], device=out.device)[None] <= first[:, None]).long()
        return out, torch.cat([mask, keep], 1), width

    def _rewards(self, prompts: list[str], completions: list[str], columns: list[dict[str, Any]]) -> torch.Tensor:
        extra = {k: [c.get(k) for c in columns] for k in (columns[0] if columns else {})}
        total = torch.zeros(len(completions))
        for name, fn, weight in self.rewards:
            values = fn(prompts=prompts, completions=completions, **extra)
            if len(values) != len(completions):
                raise LatheError(f"trl.reward_funcs: {name} returned {len(values)} rewards for {len(completions)} completions")
            total += weight * torch.tensor([float(v) if v is not None else 0.0 for v in values])
        return total

    def preference_loss(self, model: torch.nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        g = self.generation["num_generations"]
        ids, mask, width = self._generate(model, inputs)
        tok = self.processing_class
        completion_mask = mask[:, width:]
        prompts = tok.batch_decode(inputs["input_ids"].repeat_interleave(g, 0), skip_special_tokens=True)
        completions = tok.batch_decode(ids[:, width:] * completion_mask, skip_special_tokens=True)
        columns = [json.loads(c) for c in inputs[REWARD_COLUMNS] for _ in range(g)]
        rewards = self._rewards(prompts, completions, columns).to(ids.device)
        grouped = rewards.view(-1, g)
        advantages = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)).view(-1)

        logps = self._token_logps(model, ids, mask, width)
        per_token = -torch.exp(logps - logps.detach()) * advantages[:, None]
        metrics: dict[str, torch.Tensor] = {"reward": rewards, "completion_length": completion_mask.sum(1).float()}
        if self.settings.beta > 0:
            with torch.no_grad():
                if self.ref_model is not None:
                    ref = self._token_logps(self.ref_model, ids, mask, width)
                else:
                    with self.accelerator.unwrap_model(model).disable_adapter():
                        ref = self._token_logps(model, ids, mask, width)
            kl = torch.exp(ref - logps) - (ref - logps) - 1
            per_token = per_token + self.settings.beta * kl
            metrics["kl"] = ((kl * completion_mask).sum(1) / completion_mask.sum(1).clamp(min=1)).detach()
        weight = completion_mask.float()
        if self.loss_type == "grpo":
            loss = ((per_token * weight).sum(1) / weight.sum(1).clamp(min=1)).mean()
        elif self.loss_type == "dr_grpo":
            loss = (per_token * weight).sum() / (weight.shape[0] * self.generation["max_completion_length"])
        else:  # bnpo, dapo
            loss = (per_token * weight).sum() / weight.sum().clamp(min=1)
        step = self.state.global_step
        for prompt, completion, reward in zip(prompts, completions, rewards.tolist(), strict=True):
            self.lathe_completions.emit(step, {"prompt": prompt, "completion": completion, "reward": reward})
        return loss, metrics

    def _token_logps(self, model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, width: int) -> torch.Tensor:
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, width - 1 : -1].float()
        return logits.log_softmax(-1).gather(-1, ids[:, width:].unsqueeze(-1)).squeeze(-1)


def grpo_trainer_for(cfg: Any, settings: Any) -> type[GRPOTrainer]:
    trl = cfg.trl
    names = trl.reward_funcs or []
    weights = trl.reward_weights or [1.0] * len(names)
    rewards = [(name, load_reward(name, cfg.config_dir), float(w)) for name, w in zip(names, weights, strict=True)]
    generation = {"num_generations": trl.num_generations or 8, "max_completion_length": trl.max_completion_length or 256,
                  "temperature": trl.temperature if trl.temperature is not None else 1.0}
    return type("GRPOTrainer", (GRPOTrainer,), {"settings": settings, "rewards": rewards, "generation": generation,
                                                "loss_type": trl.loss_type or "dapo"})


class AxolotlTransform(PromptOnly):
    """Axolotl's GRPO dataset ``type: module.function``: ``function(cfg)`` in the user's ``module.py``
    (next to the config, else in the working directory) returns ``transform(row[, tokenizer])``, or
    ``(transform, {"remove_columns": [...] or "__all__"})``; each transformed row, whose ``prompt``
    is text or a message list, is then read as a ``grpo.chat_template`` row. The file is loaded
    only when the config names it, in each tokenizing process, and its digest is part of the
    prepared-data cache key (editing it re-prepares the data)."""

    keys: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: Any, tokenizer: Any, options: dict[str, Any]):
        super().__init__(cfg, tokenizer, {"field_prompt": "prompt", **options})
        self.path, self.func = user_file(options["type"], getattr(cfg, "config_dir", None))
        print(f"lathe: dataset type {options['type']} from {self.path}", file=sys.stderr)
        self._transform: tuple[Callable[..., dict[str, Any]], Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_transform": None}  # the user's functions are loaded again there

    def source_digest(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def _load(self) -> tuple[Callable[..., dict[str, Any]], Any]:
        try:
            made = load_function(self.path, self.func)(self.cfg)
        except LatheError as exc:
            raise LatheError(f"type {self.options['type']!r}: {exc}") from exc
        fn, extra = made if isinstance(made, tuple) else (made, {})
        if "tokenizer" in inspect.signature(fn).parameters:
            fn = functools.partial(fn, tokenizer=self.tokenizer)
        return fn, (extra or {}).get("remove_columns") or []

    def tokenize(self, row: dict[str, Any]) -> Example:
        if self._transform is None:
            self._transform = self._load()
        fn, removed = self._transform
        kept = {} if removed == "__all__" else {k: v for k, v in row.items() if k not in removed}
        return super().tokenize({**kept, **fn(dict(row))})
