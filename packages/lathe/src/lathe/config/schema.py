"""The core config (all sections) and the per-run schema that adds enabled plugins' fields."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, PrivateAttr, create_model, model_validator

from lathe.config.adapter import AdapterSection
from lathe.config.data import DataSection
from lathe.config.distributed import DistributedSection
from lathe.config.engines import EnginesSection
from lathe.config.memory import MemorySection
from lathe.config.model import ModelSection
from lathe.config.multimodal import MultimodalSection
from lathe.config.tracking import TrackingSection
from lathe.config.training import TrainingSection
from lathe.errors import LatheError

_ATTN_SWITCHES = {
    "flash_attention": "flash_attention_2",
    "sdp_attention": "sdpa",
    "flex_attention": "flex_attention",
    "eager_attention": "eager",
}


_NOT_WITH_MISTRAL_COMMON = ("chat_template", "chat_template_jinja", "special_tokens", "tokens", "tokenizer_type",
                            "eot_tokens")


def _as_list(value: list[str] | str | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


class CoreConfig(
    ModelSection, DataSection, AdapterSection, TrainingSection, TrackingSection, MemorySection, MultimodalSection,
    DistributedSection, EnginesSection
):
    """Every key the core understands. Plugins' fields are merged in by :func:`config_class`."""

    # not a key: where the config was read from (set by load_config), so never dumped or saved
    _config_dir: Path | None = PrivateAttr(default=None)

    @property
    def config_dir(self) -> Path | None:
        """The folder of the YAML file this config was read from (absolute), None for a config
        built from a dict. Files the config names by a relative name that is not a key's own
        path (GRPO's ``reward_funcs: [rewards.exact_match]``) are looked up here. It is not part
        of the config: ``lathe_config.yaml`` in ``output_dir`` does not record it."""
        return self._config_dir

    def read_from(self, path: str | Path) -> None:
        """Record the YAML file this config was read from (:attr:`config_dir`)."""
        self._config_dir = Path(path).resolve().parent

    @model_validator(mode="before")
    @classmethod
    def _attention_switches(cls, data: Any) -> Any:
        """Axolotl's boolean switches (``flash_attention: true``) choose ``attn_implementation``."""
        if not isinstance(data, dict):
            return data
        chosen = [impl for key, impl in _ATTN_SWITCHES.items() if data.get(key)]
        explicit = data.get("attn_implementation")
        if len(set(chosen)) > 1:
            raise ValueError(f"choose one attention backend; these are all set: {', '.join(sorted(set(chosen)))}")
        if chosen and explicit and explicit != chosen[0]:
            raise ValueError(f"attn_implementation: {explicit} contradicts the switch for {chosen[0]}")
        if chosen and not explicit:
            data = {**data, "attn_implementation": chosen[0]}
        return data

    @model_validator(mode="after")
    def _mistral_common_rules(self) -> CoreConfig:
        """mistral-common's tokenizer cannot be edited and its request encoding is the template
        (the keys Axolotl refuses with it, plus the ones lathe would otherwise apply to the tokenizer)."""
        if not self.tokenizer_use_mistral_common:
            return self
        given = [k for k in _NOT_WITH_MISTRAL_COMMON if getattr(self, k, None) is not None]
        if "tokenizer_use_fast" in self.model_fields_set and not self.tokenizer_use_fast:
            given.append("tokenizer_use_fast")
        if given:
            raise ValueError(f"{', '.join(given)}: not available with tokenizer_use_mistral_common (mistral-common's "
                             "tokenizer cannot be edited, its request encoding is the chat template and EOS ends each turn)")
        return self

    @model_validator(mode="after")
    def _cross_field_rules(self) -> CoreConfig:
        has_eval = bool(self.val_set_size) or bool(self.test_datasets)
        if self.early_stopping_patience and not has_eval:
            raise ValueError("early_stopping_patience needs an eval set: set val_set_size or test_datasets")
        if (self.eval_steps or self.eval_strategy in ("steps", "epoch")) and not has_eval:
            raise ValueError("eval_steps/eval_strategy need an eval set: set val_set_size or test_datasets")
        if self.evals_per_epoch and not has_eval:
            warnings.warn("evals_per_epoch is set but there is no eval set (val_set_size, test_datasets): "
                          "no evaluation will run", UserWarning, stacklevel=2)
        if self.eval_steps and self.evals_per_epoch:
            raise ValueError("set eval_steps or evals_per_epoch, not both")
        if self.save_steps and self.saves_per_epoch:
            raise ValueError("set save_steps or saves_per_epoch, not both")
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("set warmup_steps or warmup_ratio, not both")
        if self.adapter == "qlora" and not self.load_in_4bit:
            raise ValueError("adapter: qlora needs load_in_4bit: true")
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("set load_in_4bit or load_in_8bit, not both")
        if (self.load_in_4bit or self.load_in_8bit) and not self.adapter:
            raise ValueError("load_in_4bit/load_in_8bit need adapter: lora or qlora (quantized weights are frozen)")
        if self.quantize_moe_experts and not self.load_in_4bit:
            raise ValueError("quantize_moe_experts needs load_in_4bit: true (the experts are stored in 4 bits "
                             "beside bitsandbytes' 4-bit linear layers)")
        if self.quantize_moe_experts and any("experts" in t for t in _as_list(self.lora_target_parameters)):
            raise ValueError("lora_target_parameters: LoRA on quantized experts is not available; with "
                             "quantize_moe_experts put LoRA on the other modules (lora_target_modules)")
        if self.bf16 is True and self.fp16:
            raise ValueError("set bf16 or fp16, not both")
        if self.loraplus_lr_ratio is not None and not self.adapter:
            raise ValueError("loraplus_lr_ratio needs adapter: lora or qlora")
        hub_keys = [k for k in ("hub_strategy", "hub_revision", "hub_private_repo") if getattr(self, k, None) is not None]
        if hub_keys and not getattr(self, "hub_model_id", None):
            raise ValueError(f"{', '.join(hub_keys)} need hub_model_id (the repo to push to)")
        if self.lora_model_dir and not self.adapter:
            raise ValueError("lora_model_dir needs adapter: lora or qlora")
        if self.early_stopping_patience and self.save_steps and self.eval_steps and self.save_steps % self.eval_steps:
            raise ValueError("early_stopping_patience needs save_steps to be a multiple of eval_steps")
        if self.skip_prepare_dataset and self.dataset_exact_deduplication:
            raise ValueError("dataset_exact_deduplication runs while preparing the dataset, which "
                             "skip_prepare_dataset: true skips; set one of them to false")
        if not self.datasets and not self.pretraining_dataset:
            raise ValueError("datasets: at least one dataset is needed (or a pretraining_dataset)")
        if self.datasets and self.pretraining_dataset:
            raise ValueError("set datasets or pretraining_dataset, not both (Axolotl trains only on pretraining_dataset)")
        return self


Config = CoreConfig

"""The type every hook receives. At run time it is the class :func:`config_class` built."""


def field_owners(models: Sequence[tuple[str, type[BaseModel]]]) -> dict[str, str]:
    """Map each field to who defines it ("core" or a plugin), failing on a field defined twice."""
    owners = {name: "core" for name in CoreConfig.model_fields}
    for plugin, model in models:
        for name in model.model_fields:
            if name in owners:
                raise LatheError(
                    f"config key {name!r} is defined by both {owners[name]!r} and plugin {plugin!r}"
                )
            owners[name] = plugin
    return owners


def config_class(models: Sequence[tuple[str, type[BaseModel]]]) -> type[CoreConfig]:
    """The run's config class: the core sections plus each enabled plugin's model."""
    if not models:
        return CoreConfig
    field_owners(models)
    bases = (CoreConfig, *(m for _, m in models))
    return create_model("Config", __base__=bases)  # type: ignore[call-overload,no-any-return]
