"""Prompt strategies: how one dataset row becomes ``input_ids`` and ``labels``.

A strategy is chosen by a dataset entry's ``type``. The core's strategies and those
plugins return from ``lathe_prompt_strategies`` form one registry per run; a name
defined twice is an error naming both owners. Each strategy declares the dataset-entry
keys it accepts (``keys``, with defaults) and Axolotl's old names for them (``renamed``);
any other key is an error naming ``datasets[i].key`` with a did-you-mean.
"""

from __future__ import annotations

import warnings
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, ClassVar

from lathe.errors import LatheError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from lathe.config import Config, DatasetConfig
    from lathe.plugins import Plugins

IGNORE = -100
ROWS_PER_BATCH = 1000
Example = dict[str, list[int]]
"""A tokenized row: ``input_ids`` and ``labels`` of equal length (``labels`` -100 where not trained).

A strategy may add other per-token columns (lists as long as ``input_ids``, e.g. a teacher's
top-k logprobs); truncation and packing carry them along with the tokens."""

# Keys of DatasetConfig itself (every strategy accepts them).
COMMON_KEYS = frozenset({
    "path", "type", "ds_type", "data_files", "split", "name", "revision", "shards", "shards_idx", "streaming",
})


class ConfigValues:
    """A picklable read-only copy of a config's values, read by attribute like the config."""

    def __init__(self, cfg: Any):
        if isinstance(cfg, ConfigValues):
            self.__dict__.update(cfg.__dict__)
        else:
            self.__dict__.update({name: getattr(cfg, name) for name in type(cfg).model_fields})


class MissingField(LatheError):
    """A row lacks a field its strategy needs; the caller adds dataset and row."""

    def __init__(self, field: str):
        super().__init__(field)
        self.field = field


class DatasetKeyWarning(UserWarning):
    """A dataset-entry key written for Axolotl under an old name."""


class PromptStrategy:
    """Base class of every prompt strategy (core and plugins').

    Subclasses set ``keys`` (entry key → default) and implement :meth:`tokenize`; a
    strategy whose rows are not independent (pretraining chunks) sets ``batched`` and
    overrides :meth:`tokenize_batch`.
    """

    keys: ClassVar[dict[str, Any]] = {}
    renamed: ClassVar[dict[str, str]] = {}
    batched: ClassVar[bool] = False
    # labels are the tokens a causal LM learns to predict (False: classes, as a process reward
    # model's step labels; then "no EOS is trained" is no warning)
    next_token_labels: ClassVar[bool] = True

    def __init__(self, cfg: Config, tokenizer: PreTrainedTokenizerBase, options: dict[str, Any]):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.options = options

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for tokenizing processes: the run's config class is built at run time (plugins'
        fields merged in) and cannot be pickled, so its values travel as a :class:`ConfigValues`."""
        return {**self.__dict__, "cfg": ConfigValues(self.cfg)}

    @classmethod
    def resolve_options(cls, raw: dict[str, Any], where: str) -> dict[str, Any]:
        """This strategy's options from an entry's extra keys: old names mapped, unknown ones refused."""
        options = dict(cls.keys)
        for key, value in raw.items():
            if key in cls.renamed:
                new = cls.renamed[key]
                warnings.warn(f"{where}.{key} is now {new!r}; please rename it", DatasetKeyWarning, stacklevel=3)
                cls._apply_renamed(options, new, value)
                continue
            if key not in cls.keys:
                close = get_close_matches(key, [*cls.keys, *COMMON_KEYS], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                allowed = ", ".join(sorted(cls.keys)) or "none besides the common ones"
                raise LatheError(f"{where}.{key}: unknown key for this dataset type{hint} (its keys: {allowed})")
            options[key] = value
        return options

    @staticmethod
    def _apply_renamed(options: dict[str, Any], new: str, value: Any) -> None:
        """Store an old key's value under its new name; ``a.b`` targets sets key ``b`` of dict ``a``."""
        if "." in new:
            outer, inner = new.split(".", 1)
            options[outer] = {**(options.get(outer) or {}), inner: value}
        else:
            options[new] = value

    @staticmethod
    def field(row: dict[str, Any], name: str) -> Any:
        if name not in row or row[name] is None:
            raise MissingField(name)
        return row[name]

    def encode(self, text: str, *, first: bool) -> list[int]:
        """Token ids of ``text``; the tokenizer's BOS etc. only for the first piece of a row."""
        return list(self.tokenizer(text, add_special_tokens=first)["input_ids"])

    def source_digest(self) -> str:
        """A digest of what the strategy reads besides the rows and its options (a user's
        transform file), part of the prepared-data cache key; empty for most strategies."""
        return ""

    def rows_per_batch(self) -> int:
        """Rows tokenized together (a batched strategy's rows never combine across batches)."""
        return ROWS_PER_BATCH

    def tokenize(self, row: dict[str, Any]) -> Example:
        raise NotImplementedError

    def tokenize_batch(self, rows: list[dict[str, Any]]) -> list[Example]:
        return [self.tokenize(row) for row in rows]


class PromptResponseStrategy(PromptStrategy):
    """A prompt (trained only with ``train_on_inputs``) followed by a trained response and EOS.

    Tokenized as Axolotl's instruction formats are: the prompt with the tokenizer's special
    tokens (its BOS), cut at ``sequence_len``; the response with the special tokens, cut at
    ``sequence_len``, its leading BOS removed and an EOS appended unless it already ends with
    one (or was cut). An empty prompt or response adds no tokens at all (and so no EOS).
    Subclasses say how a row splits (:meth:`split`); rows are tokenized a batch at a time.
    """

    def split(self, row: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def tokenize(self, row: dict[str, Any]) -> Example:
        return self.tokenize_batch([row])[0]

    def _encode_all(self, texts: list[str]) -> list[list[int]]:
        size = self.cfg.sequence_len
        encoded = self.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=size)["input_ids"]
        return [list(ids) if text else [] for text, ids in zip(texts, encoded, strict=True)]

    def tokenize_batch(self, rows: list[dict[str, Any]]) -> list[Example]:
        pairs = [self.split(row) for row in rows]
        prompts = self._encode_all([p for p, _ in pairs])
        responses = self._encode_all([r for _, r in pairs])
        eos, bos = self.tokenizer.eos_token_id, self.tokenizer.bos_token_id
        out = []
        for prompt, response in zip(prompts, responses, strict=True):
            if response and response[-1] != eos and len(response) < self.cfg.sequence_len and eos is not None:
                response.append(eos)
            if response and bos is not None and response[0] == bos:
                response = response[1:]
            prompt_labels = list(prompt) if self.cfg.train_on_inputs else [IGNORE] * len(prompt)
            out.append({"input_ids": [*prompt, *response], "labels": prompt_labels + response})
        return out


def core_strategies() -> dict[str, type[PromptStrategy]]:
    from lathe.data.strategies.chat import ChatTemplateStrategy
    from lathe.data.strategies.instruct import instruct_strategies
    from lathe.data.strategies.text import CompletionStrategy, InputOutputStrategy, PretrainStrategy

    return {
        **instruct_strategies(),
        "completion": CompletionStrategy,
        "input_output": InputOutputStrategy,
        "chat_template": ChatTemplateStrategy,
        "pretrain": PretrainStrategy,
    }


def strategy_registry(plugins: Plugins) -> dict[str, type[PromptStrategy]]:
    """Core strategies plus plugins' (merge rule: a name defined twice names both owners)."""
    registry = core_strategies()
    owner = dict.fromkeys(registry, "core")
    for plugin, answer in plugins.answers("lathe_prompt_strategies"):
        for name, cls in (answer or {}).items():
            if name in owner:
                raise LatheError(f"prompt strategy {name!r} is defined by both {owner[name]!r} and plugin {plugin!r}")
            owner[name] = plugin
            registry[name] = cls
    return registry


def build_strategy(
    entry: DatasetConfig, where: str, cfg: Config, tokenizer: PreTrainedTokenizerBase,
    registry: dict[str, type[PromptStrategy]], plugins: Plugins | None = None,
) -> PromptStrategy:
    """The strategy for the entry at ``where`` (``datasets[0]``), its entry keys validated; a type
    the registry lacks is asked of the plugins (``lathe_dataset_type``)."""
    raw = dict(entry.model_extra or {})
    kind = entry.type
    if isinstance(kind, dict):
        raw = {**kind, **raw}
        kind = "user_defined"
    if kind is None:
        raise LatheError(f"{where}.type: missing; name a prompt strategy ({', '.join(sorted(registry))})")
    found = plugins.call("lathe_dataset_type", cfg=cfg, name=kind) if plugins and kind not in registry else None
    if found is not None:
        try:
            return found(cfg, tokenizer, {**found.resolve_options(raw, where), "type": kind})  # type: ignore[no-any-return]
        except LatheError as exc:
            raise LatheError(f"{where}.type: {exc}") from exc
    if kind not in registry:
        close = get_close_matches(kind, list(registry), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise LatheError(f"{where}.type: unknown prompt strategy {kind!r}; {hint}(known: {', '.join(sorted(registry))})")
    cls = registry[kind]
    if kind == "chat_template" and cfg.tokenizer_use_mistral_common:
        from lathe.data.strategies.mistral_common import MistralCommonChatStrategy

        cls = MistralCommonChatStrategy
    return cls(cfg, tokenizer, cls.resolve_options(raw, where))
