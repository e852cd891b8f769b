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
    skip: int | None = Field(None, ge=0, description="Rows skipped at the start of the source (pretraining_dataset's skip).")

    @model_validator(mode="after")
    def _known_chat_template(self) -> DatasetConfig:
        """An entry's own ``chat_template`` is checked here, before anything loads."""
        name = (self.model_extra or {}).get("chat_template")
        if isinstance(name, str) and (why := template_problem(name)):
            raise ValueError(f"chat_template: {why}")
        return self


class PretrainingDatasetConfig(ConfigModel):
    """An entry of ``pretraining_dataset`` (Axolotl's streamed pretraining source).

    It is read as a streamed ``datasets`` entry of ``type: pretrain`` whose text column is
    ``text_column``; other keys go to the entry as they would under ``datasets``.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    path: str
    name: str | None = None
    split: str = "train"
    data_files: str | list[str] | None = None
    text_column: str = "text"
    type: str | dict[str, Any] | None = "pretrain"
    skip: int | None = Field(None, ge=0)
    streaming: bool = True

    def as_dataset(self) -> DatasetConfig:
        """The ``datasets`` entry this source reads as."""
        values = self.model_dump(exclude={"text_column"})
        if values["type"] in (None, "pretrain"):
            values.update(type="pretrain", field=self.text_column)
        return DatasetConfig(**values)


class DataSection(ConfigModel):
    @field_validator("pretraining_dataset", mode="before")
    @classmethod
    def _one_pretraining_source(cls, value: Any) -> Any:
        """A bare path is one entry; Axolotl reads only the first of several, so lathe refuses several."""
        if isinstance(value, str):
            return [{"path": value}]
        if isinstance(value, dict):
            return [value]
        if isinstance(value, list) and len(value) > 1:
            raise ValueError("give one source (Axolotl reads only the first entry of pretraining_dataset)")
        return value

    datasets: list[DatasetConfig] = data_field(default_factory=list)
    test_datasets: list[DatasetConfig] | None = data_field()
    pretraining_dataset: list[PretrainingDatasetConfig] | None = data_field(description="A pretraining source read as a stream of documents (instead of datasets); a path string or one entry.")
    pretraining_sample_concatenation: bool | None = data_field(description="Unpacked pretraining: lay documents one after another into sequence_len rows (else one row per document).")
    streaming_multipack_buffer_size: int | None = data_field(None, ge=1, description="Pretraining documents tokenized together (default 10000); concatenated rows never span two such batches.")
    val_set_size: float = data_field(0.0, ge=0, description="Fraction (<1) or number of rows held out for eval.")
    dataset_prepared_path: str | None = Field(None, description="Folder of the prepared-dataset cache; default ./last_run_prepared.")
    dataset_processes: int | None = Field(None, ge=1, description="Tokenizing processes; default the CPU count (small datasets use one).")
    shuffle_merged_datasets: bool = data_field(True)
    dataset_exact_deduplication: bool = data_field(False, description="Drop tokenized rows identical to an earlier one (per split, before the eval split).")
    chat_template: str | None = data_field(description="tokenizer_default, jinja, or a built-in named for the model family and version (docs/data.md lists them and Axolotl's names).")
    chat_template_jinja: str | None = data_field()
    default_system_message: str | None = data_field()
    system_message_handling: Literal["native", "fold"] = data_field("native", description="native: the template handles system messages as the model family's does (refused where the family refuses them, e.g. gemma); fold: a system message is prepended to the first user message before rendering.")
    sequence_len: int = data_field(2048, ge=8)
    sample_packing: bool = data_field(False)
    eval_sample_packing: bool | None = data_field(description="Pack the eval set; default follows sample_packing.")
    pad_to_sequence_len: bool = False
    train_on_inputs: bool = data_field(False)
    min_sample_len: int | None = data_field(None, ge=1, description="Rows shorter than this many tokens are dropped (default 2).")
    eot_tokens: list[str] | None = data_field(description="End-of-turn tokens of chat templates (trained per train_on_eot); default: EOS and the template's own turn-end token.")
    excess_length_strategy: Literal["drop", "truncate", "raise"] = data_field("drop", description="What happens to a row longer than sequence_len.")

    @field_validator("chat_template")
    @classmethod
    def _known_chat_template(cls, name: str | None) -> str | None:
        if name is not None and (why := template_problem(name)):
            raise ValueError(why)
        return name
