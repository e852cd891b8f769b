"""Model, tokenizer, precision and attention keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lathe.config.base import ConfigModel
from lathe.config.fields import data_field

# transformers' experts_implementation values (integrations/moe.py), and Axolotl's scattermoe
ExpertsImplementation = Literal["eager", "batched_mm", "grouped_mm", "sonicmoe", "deepgemm", "scattermoe"]
AttnImplementation = Literal[
    "eager", "sdpa", "flex_attention", "flash_attention_2", "flash_attention_3"
]


class ModelSection(ConfigModel):
    base_model: str = Field(description="Local path or hub id of the model to fine-tune.")
    base_model_config: str | None = Field(None, description="Take the model config from here instead.")
    tokenizer_config: str | None = data_field(description="Take the tokenizer from here instead.")
    tokenizer_type: str | None = data_field(description="transformers tokenizer class to load with; default AutoTokenizer.")
    model_type: str | None = Field(None, description="transformers class to load with: AutoModelForCausalLM (default; "
                                   "AutoModelForImageTextToText for a vision-language model), a *ForCausalLM or a "
                                   "*ForConditionalGeneration class.")
    tokenizer_use_fast: bool = data_field(True)
    tokenizer_use_mistral_common: bool = data_field(
        False, description="Load the tokenizer through mistral-common (tekken.json / tokenizer.model.v*) and encode "
        "chat_template datasets with its request encoding (pip install 'lathe[mistral]').")
    trust_remote_code: bool = Field(False, description="Run code shipped with the model. Off unless set.")
    revision_of_model: str | None = None
    random_init_weights: bool = Field(False, description="Build the model from its config with random weights.")
    overrides_of_model_config: dict[str, Any] | None = Field(None, description="Keys set on the model config before building (e.g. rope_scaling).")
    overrides_of_model_kwargs: dict[str, Any] | None = Field(None, description="Extra keyword arguments of from_pretrained (Axolotl's model_kwargs).")
    special_tokens: dict[str, str] | None = data_field(description="bos_token, eos_token, pad_token, unk_token to set.")
    tokens: list[str] | None = data_field(description="Tokens to add to the vocabulary (embeddings are resized).")
    allow_pickle_weights: bool = Field(False, description="Allow loading .bin (pickle) weights; safetensors only otherwise.")

    bf16: bool | Literal["auto"] | None = Field("auto", description="Train in bfloat16; auto picks it where the hardware supports it.")
    fp16: bool | None = None
    tf32: bool | None = None

    attn_implementation: AttnImplementation | None = Field(None, description="Attention backend; default sdpa.")
    flash_attention: bool | None = Field(None, description="Axolotl's switch for attn_implementation: flash_attention_2.")
    sdp_attention: bool | None = Field(None, description="Axolotl's switch for attn_implementation: sdpa.")
    flex_attention: bool | None = Field(None, description="Axolotl's switch for attn_implementation: flex_attention.")
    eager_attention: bool | None = None

    gradient_checkpointing: bool | Literal["offload", "offload_disk"] = Field(
        False, description="Recompute activations in backward; offload / offload_disk also set activation_offloading true / disk.")
    gradient_checkpointing_kwargs: dict[str, Any] | None = None
    activation_offloading: bool | Literal["legacy", "disk", "hidden_states"] = Field(
        False, description="Move saved activations off the accelerator during forward: true (CPU, side stream), "
        "legacy (CPU, synchronous) or disk (temporary files); see docs/memory.md.")

    load_in_8bit: bool = False
    load_in_4bit: bool = False
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = True
    bnb_4bit_compute_dtype: Literal["bfloat16", "float16", "float32"] | None = None
    quantize_moe_experts: bool = Field(
        False, description="Store the fused MoE experts (Qwen2/Qwen3-MoE, OLMoE, Mixtral) in 4 bits too "
        "(bnb_4bit_quant_type, per expert), dequantized per expert in the forward; needs load_in_4bit.")
    experts_implementation: ExpertsImplementation | None = Field(
        None, description="transformers' forward for fused MoE experts (default: its grouped_mm where it runs, "
        "else eager); scattermoe goes with use_scattermoe. See docs/moe.md.")
    use_scattermoe: bool | None = Field(None, description="Axolotl's ScatterMoE switch: lathe serves it with "
                                        "transformers' grouped_mm experts and says so.")
    use_sonicmoe: bool | None = Field(None, description="transformers' SonicMoE experts when the kernels package, a "
                                      "Hopper GPU and the kernel in the local cache are present, else grouped_mm.")
    use_kernels: bool | None = Field(None, description="transformers' use_kernels: hub kernels (kernels package) "
                                     "for the layers that declare one (pip install 'lathe[kernels]').")

    @field_validator("model_type")
    @classmethod
    def _text_model_class(cls, name: str | None) -> str | None:
        if name is None or name.endswith("ForCausalLM") or name in IMAGE_TEXT_CLASSES:
            return name
        if name.endswith("ForConditionalGeneration"):  # a vision-language family's class (Qwen2VL..., Llava...)
            return name
        raise ValueError(
            f"model_type: {name} is not available in lathe: it trains causal language models "
            "(AutoModelForCausalLM or a *ForCausalLM class) and vision-language models (AutoModelForImageTextToText "
            "or a *ForConditionalGeneration class); classification and other model classes are not available yet"
        )

    @model_validator(mode="after")
    def _offloading_modes(self) -> ModelSection:
        if self.activation_offloading == "hidden_states":
            raise ValueError("activation_offloading: hidden_states (offloading only the checkpointed layer inputs) is not "
                             "available in lathe; use true, legacy or disk")
        if self.gradient_checkpointing in ("offload", "offload_disk") and self.activation_offloading not in (False, True):
            raise ValueError(f"gradient_checkpointing: {self.gradient_checkpointing} already chooses the activation "
                             f"offloading; remove activation_offloading: {self.activation_offloading}")
        return self

    @model_validator(mode="after")
    def _experts_keys_agree(self) -> ModelSection:
        if self.use_scattermoe and self.use_sonicmoe:
            raise ValueError("set use_scattermoe or use_sonicmoe, not both")
        switch = "scattermoe" if self.use_scattermoe else "sonicmoe" if self.use_sonicmoe else None
        given = self.experts_implementation
        if given == "scattermoe" and switch != "scattermoe":
            raise ValueError("experts_implementation: scattermoe needs use_scattermoe: true")
        if switch and given not in (None, switch):
            raise ValueError(f"experts_implementation: {given} contradicts use_{switch}: true")
        if given and self.quantize_moe_experts:
            raise ValueError(f"experts_implementation: {given}: with quantize_moe_experts the 4-bit experts run "
                             "lathe's own per-expert path; remove experts_implementation")
        return self

    @model_validator(mode="after")
    def _model_kwargs_lathe_does_not_set(self) -> ModelSection:
        given = set(self.overrides_of_model_kwargs or {})
        owned = sorted(given & set(MODEL_KWARGS_OWNED))
        if owned:
            raise ValueError("overrides_of_model_kwargs: " + "; ".join(f"{k} is set by {MODEL_KWARGS_OWNED[k]}" for k in owned))
        if given and self.random_init_weights:
            raise ValueError("overrides_of_model_kwargs are from_pretrained arguments; random_init_weights builds without from_pretrained")
        return self


IMAGE_TEXT_CLASSES = ("AutoModelForImageTextToText",)

# from_pretrained arguments lathe sets from its own keys
MODEL_KWARGS_OWNED: dict[str, str] = {
    "config": "base_model_config / overrides_of_model_config", "dtype": "bf16 / fp16", "torch_dtype": "bf16 / fp16",
    "attn_implementation": "attn_implementation", "trust_remote_code": "trust_remote_code",
    "use_safetensors": "allow_pickle_weights", "revision": "revision_of_model",
    "quantization_config": "load_in_4bit / load_in_8bit", "device_map": "lathe (one device)",
    "experts_implementation": "experts_implementation / use_scattermoe / use_sonicmoe", "use_kernels": "use_kernels",
}
