"""Dataset, prompt-format, length and packing keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from lathe.config.base import ConfigModel
from lathe.config.fields import data_field
from lathe.data.templates import problem as template_problem


class DatasetConfig(ConfigModel):
    """One entry of ``datasets`` / ``test_datasets``.

    Keys beyond these belong to the prompt strategy named by ``type``, which
    validates them itself (so a plugin's strategy can take its own keys).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    path: str
    type: str | dict[str, Any] | None = None
    ds_type: Literal["json", "jsonl", "parquet", "csv", "arrow", "text"] | None = None
    data_files: str | list[str] | None = None
    split: str = "train"
    name: str | None = None
    revision: str | None = None
    shards: int | None = Field(None, ge=1)
    shards_idx: int | None = Field(None, ge=0)
    streaming: bool = Field(False, description="Read rows as a stream and tokenize them as they arrive, without first converting the source to Arrow.")

    @model_validator(mode="after")
    def _known_chat_template(self) -> DatasetConfig:
        """An entry's own ``chat_template`` is checked here, before anything loads."""
        name = (self.model_extra or {}).get("chat_template")
        if isinstance(name, str) and (why := template_problem(name)):
            raise ValueError(f"chat_template: {why}")
        return self


class DataSection(ConfigModel):
    datasets: list[DatasetConfig] = data_field(default_factory=list)
    test_datasets: list[DatasetConfig] | None = data_field()
    val_set_size: float = data_field(0.0, ge=0, description="Fraction (<1) or number of rows held out for eval.")
    dataset_prepared_path: str | None = Field(None, description="Folder of the prepared-dataset cache; default ./last_run_prepared.")
    dataset_processes: int | None = Field(None, ge=1, description="Tokenizing processes; default the CPU count (small datasets use one).")
    shuffle_merged_datasets: bool = data_field(True)
    chat_template: str | None = data_field(description="tokenizer_default, jinja, or a built-in named for the model family and version (docs/data.md lists them and Axolotl's names).")
    chat_template_jinja: str | None = data_field()
    default_system_message: str | None = data_field()
    system_message_handling: Literal["native", "fold"] = data_field("native", description="native: the template handles system messages as the model family's does (refused where the family refuses them, e.g. gemma); fold: a system message is prepended to the first user message before rendering.")
    sequence_len: int = data_field(2048, ge=8)
    sample_packing: bool = data_field(False)
    eval_sample_packing: bool | None = data_field(description="Pack the eval set; default follows sample_packing.")
    pad_to_sequence_len: bool = False
    train_on_inputs: bool = data_field(False)
    excess_length_strategy: Literal["drop", "truncate", "raise"] = data_field("drop", description="What happens to a row longer than sequence_len.")

    @field_validator("chat_template")
    @classmethod
    def _known_chat_template(cls, name: str | None) -> str | None:
        if name is not None and (why := template_problem(name)):
            raise ValueError(why)
        return name
