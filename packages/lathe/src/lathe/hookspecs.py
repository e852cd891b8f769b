"""The plugin contract: every hook lathe calls, when it fires, and how answers combine.

A plugin is a module of functions decorated with ``lathe.hookimpl`` whose names are
the specs below. A function may accept any subset of a spec's arguments.

Every hook is marked with one of three combine rules (DESIGN.md §3):

- **all**: every implementation runs; list results are concatenated.
- **merge**: dict results are merged; two plugins setting one key is an error
  naming both.
- **exclusive**: at most one plugin may answer (return non-None); two answers is
  an error naming both.

``cfg`` is always the validated, frozen config object (core fields plus the fields
of every enabled plugin), never a dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pluggy

if TYPE_CHECKING:
    import click
    import torch
    from pydantic import BaseModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback

    from lathe.config import Config
    from lathe.data.strategies import PromptStrategy
    from lathe.hidden_loss import HiddenStatesLoss

PROJECT = "lathe"
Combine = Literal["all", "merge", "exclusive"]
F = TypeVar("F")

_hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


def spec(combine: Combine):
    """Declare a hook spec together with its combine rule."""

    def mark(func: F) -> F:
        func.combine = combine  # type: ignore[attr-defined]
        return _hookspec(func)

    return mark


# --- configuration ---------------------------------------------------------------


@spec("merge")
def lathe_config_model() -> type[BaseModel] | None:
    """Return the pydantic model whose fields this plugin adds to the config.

    Fires when the schema is built, before the YAML is validated. Fields are flat
    (``grokfast_alpha``) or one nested block (``diffusion:``). Two plugins (or a plugin
    and the core) defining the same field is an error naming both.
    """


@spec("all")
def lathe_validate_config(cfg: Config) -> list[str] | None:
    """Return problems with the validated config that only this plugin can judge.

    Fires after schema validation, before any data or model is loaded. Each string
    is one problem and should name the key. All plugins' problems are reported
    together.
    """


# --- data ------------------------------------------------------------------------


@spec("merge")
def lathe_prompt_strategies() -> dict[str, type[PromptStrategy]] | None:
    """Return prompt strategies by dataset ``type`` name (``{"kd.chat_template": ...}``).

    Fires when the strategy registry is built. A name already taken by the core
    or another plugin is an error naming both.
    """


@spec("exclusive")
def lathe_dataset_type(cfg: Config | None, name: str) -> type[PromptStrategy] | None:
    """Return the prompt strategy for a dataset ``type`` no registry entry has (a transform in the
    user's own file: Axolotl's GRPO ``type: rewards.gsm8k_transform``).

    Fires when a dataset entry names a type that is neither the core's nor in
    ``lathe_prompt_strategies``; ``cfg`` is None when only the raw config is checked (``lathe
    config validate``). lathe builds the answer as any strategy, with ``options["type"]`` set
    to ``name``; a LatheError its constructor raises is reported at the entry's ``type``. A
    strategy that reads a file of the user's returns its digest from
    :meth:`PromptStrategy.source_digest`, so editing the file invalidates the prepared data.
    """


# --- model -----------------------------------------------------------------------


@spec("all")
def lathe_pre_model_load(cfg: Config) -> None:
    """Fires before the tokenizer and model are loaded (patch model classes here)."""


@spec("exclusive")
def lathe_model_class(cfg: Config) -> tuple[type, dict[str, Any]] | None:
    """Return the transformers class the base model is built with instead of
    ``AutoModelForCausalLM``, and the model-config attributes that class needs:
    ``(AutoModelForSequenceClassification, {"num_labels": 1})`` for a reward model.

    Fires whenever the base model is built or its config is read (training, preprocess,
    inference, merge-lora), so the same class loads what training saved. The attributes are
    set on the model config before the weights load (a new head is sized from them). Under
    LoRA a ``*ForSequenceClassification`` / ``*ForTokenClassification`` model gets peft's
    matching task type, so its new head is trained and saved with the adapter. Refused
    beside a ``model_type`` key (two answers to one question).
    """


@spec("all")
def lathe_post_tokenizer_load(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> None:
    """Fires after the tokenizer is loaded and its special tokens are set.

    Add tokens here (e.g. a mask token); the model's embeddings are resized to the
    tokenizer after this hook.
    """


@spec("all")
def lathe_post_model_build(cfg: Config, model: PreTrainedModel) -> None:
    """Fires after the base model is built, before adapters are attached."""


@spec("all")
def lathe_pre_adapter_load(cfg: Config, model: PreTrainedModel) -> None:
    """Fires before a LoRA/QLoRA adapter is attached (only when ``adapter`` is set)."""


@spec("all")
def lathe_post_adapter_load(cfg: Config, model: torch.nn.Module) -> None:
    """Fires after the adapter is attached (only when ``adapter`` is set).

    Also when a saved adapter is loaded onto its base for ``lathe inference``,
    ``lathe evaluate`` and ``lathe merge-lora``, so a change a plugin makes to the
    adapter layers holds wherever the adapter is used.
    """


@spec("all")
def lathe_post_model_load(
    cfg: Config, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase
) -> None:
    """Fires when the model is complete (adapters attached, parameters frozen).

    Freeze or unfreeze parameters here.
    """


# --- trainer ---------------------------------------------------------------------


@spec("exclusive")
def lathe_trainer_cls(cfg: Config) -> type[Trainer] | None:
    """Return a ``transformers.Trainer`` subclass to train with instead of lathe's."""


@spec("exclusive")
def lathe_hidden_states_loss(cfg: Config) -> HiddenStatesLoss | None:
    """Return the training loss to compute from the final hidden states instead of from logits.

    Fires at validation (so two such losses are refused before anything loads) and when the
    trainer is built. The trainer then runs the model with ``output_hidden_states=True,
    logits_to_keep=1`` and calls the answer with the hidden states, the model's
    :class:`lathe.hidden_loss.OutputHead`, the labels and the trained-token count of the
    accumulated batch (see :mod:`lathe.hidden_loss`). Fused linear cross-entropy, Cut Cross
    Entropy and chunked distillation meet here: two answers is an error naming both plugins
    and the keys that enabled them.
    """


@spec("merge")
def lathe_training_args(cfg: Config) -> dict[str, Any] | None:
    """Return ``TrainingArguments`` overrides (keyword → value)."""


@spec("exclusive")
def lathe_collator(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> Any | None:
    """Return the data collator that turns rows into batches."""


@spec("exclusive")
def lathe_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer | None:
    """Return the optimizer to use instead of the one ``optimizer`` names."""


@spec("exclusive")
def lathe_lr_scheduler(
    cfg: Config, optimizer: torch.optim.Optimizer, num_training_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Return the LR scheduler to use instead of the one ``lr_scheduler`` names."""


@spec("all")
def lathe_callbacks(cfg: Config) -> list[TrainerCallback] | None:
    """Return trainer callbacks; every plugin's lists are concatenated."""


@spec("all")
def lathe_post_trainer_create(cfg: Config, trainer: Trainer) -> None:
    """Fires after the trainer is constructed, before ``train()``."""


@spec("all")
def lathe_post_train(cfg: Config, model: torch.nn.Module, trainer: Trainer) -> None:
    """Fires after training ended and the outputs were saved.

    ``trainer`` is the finished trainer: ``trainer.log(metrics)`` sends metrics computed
    after training (a benchmark) to every tracker the run reports to.
    """


@spec("all")
def lathe_run_error(cfg: Config, error: BaseException) -> None:
    """Fires when ``lathe train`` fails, before ``lathe_post_train_unload``.

    ``error`` is what stopped the run: an exception from any stage (a hook included) or
    the interrupt of a run stopped by a signal. For reporting only (an alert, a tracker's
    "crashed" state): the run's error is raised afterwards unchanged, and an exception
    raised here is printed, not raised in its place.
    """


@spec("all")
def lathe_post_merge(cfg: Config, model: torch.nn.Module, path: Path) -> None:
    """Fires in ``lathe merge-lora`` after the merged model was written to ``path``
    (``model`` is the merged model); rewrite or add files there."""


@spec("all")
def lathe_post_train_unload(cfg: Config) -> None:
    """Fires last, also after a failed run: undo every patch this plugin made."""


# --- inference and commands ------------------------------------------------------


@spec("exclusive")
def lathe_generate(
    cfg: Config, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompt: str
) -> str | None:
    """Return the completion of ``prompt`` when this plugin's model generates differently
    (e.g. by iterative unmasking). ``lathe inference`` uses it instead of ``generate``."""


@spec("merge")
def lathe_inference_commands(cfg: Config) -> dict[str, Any] | None:
    """Return ``lathe inference`` line commands by name (``{"complete": fn}`` adds ``:complete``).

    Fires when inference starts. A prompt line ``:name rest`` (typed, or given with
    ``--prompt``) calls ``fn(model, tokenizer, rest)`` on the raw text, without the
    prompt format, and prints the string it returns. Two plugins adding one name is an
    error naming both.
    """


@spec("all")
def lathe_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``lathe`` command. Fires when the CLI is built."""
